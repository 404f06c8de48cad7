"""Test helpers: a tiny scripted service (payplane.testing.v1.EchoService) and its client.

    servicer = EchoServicer()
    server, port = await create_server(services=[echo_service(servicer)],
                                       service_names=[ECHO_SERVICE], auth=echo_auth(), ...)
    client = EchoClient(channel(f"127.0.0.1:{port}", "tok-storefront"))

`Mutate` is an idempotent two-phase operation: charge (a side effect, counted in
`servicer.charges`), checkpoint "charged", reply. `MutateRequest.behaviour` scripts failures
(see Behaviour).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import grpc
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from payplane.idempotency import current
from payplane.testing.v1 import echo_pb2, echo_pb2_grpc

from ._auth import CallerAuth
from ._pipeline import current_caller
from ._server import AddServicer
from .errors import FailedPrecondition, InvalidArgument, NotFound

__all__ = [
    "ECHO",
    "ECHO_SERVICE",
    "MUTATE",
    "TOKENS",
    "Behaviour",
    "EchoClient",
    "EchoServicer",
    "SimulatedCrash",
    "echo_auth",
    "echo_service",
    "health_status",
    "reflected_services",
]

ECHO_SERVICE = "payplane.testing.v1.EchoService"
ECHO = f"/{ECHO_SERVICE}/Echo"
MUTATE = f"/{ECHO_SERVICE}/Mutate"
TOKENS = {"tok-storefront": "storefront", "tok-saas": "saas"}


def echo_auth() -> CallerAuth:
    """storefront may call both methods; saas only Echo."""
    return CallerAuth(TOKENS, {ECHO: {"storefront", "saas"}, MUTATE: {"storefront"}})


class Behaviour:
    """Values of MutateRequest.behaviour."""

    OK = ""
    INVALID = "invalid"  # InvalidArgument before any side effect
    UNKNOWN_ACCOUNT = "unknown_account"  # NotFound before any side effect
    BOOM = "boom"  # an unexpected exception (with a secret in its message)
    WAIT = "wait"  # set `started`, wait for `release`, then proceed
    CRASH_AFTER_CHARGE = "crash_after_charge"  # charge, checkpoint, crash unless resumed
    DECLINE_AFTER_CHARGE = "decline_after_charge"  # charge, checkpoint, FailedPrecondition


class SimulatedCrash(RuntimeError):
    """Stands in for a process dying between two phases of an operation."""


class EchoServicer(echo_pb2_grpc.EchoServiceServicer):
    def __init__(self) -> None:
        self.calls = 0  # handler entries
        self.charges: list[tuple[str, int]] = []  # the side effect that must happen once
        self.balances: dict[str, int] = defaultdict(int)
        self.callers: list[str | None] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def Echo(
        self, request: echo_pb2.EchoRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> echo_pb2.EchoReply:
        self.calls += 1
        self.callers.append(current_caller())
        if request.message == Behaviour.WAIT:
            self.started.set()
            await self.release.wait()
        return echo_pb2.EchoReply(message=request.message)

    async def Mutate(
        self, request: echo_pb2.MutateRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> echo_pb2.MutateReply:
        self.calls += 1
        record = current()
        if record is None:
            raise FailedPrecondition("Mutate must run behind the idempotency interceptor")
        behaviour = request.behaviour
        if behaviour == Behaviour.INVALID or request.amount_minor <= 0:
            raise InvalidArgument("amount_minor must be positive")
        if behaviour == Behaviour.UNKNOWN_ACCOUNT:
            raise NotFound(f"account {request.account!r} not found")
        if behaviour == Behaviour.BOOM:
            raise RuntimeError("secret: the database password is hunter2")
        if behaviour == Behaviour.WAIT:
            self.started.set()
            await self.release.wait()
        if record.recovery_point is None:
            self.balances[request.account] += request.amount_minor
            self.charges.append((request.account, request.amount_minor))
            await record.checkpoint("charged", {"balance": self.balances[request.account]})
        if behaviour == Behaviour.CRASH_AFTER_CHARGE and not record.resumed:
            raise SimulatedCrash("simulated crash after the charge")
        if behaviour == Behaviour.DECLINE_AFTER_CHARGE:
            raise FailedPrecondition("card declined after authorisation")
        return echo_pb2.MutateReply(
            account=request.account,
            balance_minor=int(record.recovery_data["balance"]),
            stripe_key=record.stripe_key("charge"),
        )


def echo_service(servicer: EchoServicer) -> tuple[AddServicer, object]:
    """The (add_..._to_server, servicer) pair create_server takes."""
    add: AddServicer = echo_pb2_grpc.add_EchoServiceServicer_to_server
    return add, servicer


class EchoClient:
    """Typed calls to EchoService over any grpc.aio channel."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.channel = channel
        self.echo_call = channel.unary_unary(
            ECHO,
            request_serializer=echo_pb2.EchoRequest.SerializeToString,
            response_deserializer=echo_pb2.EchoReply.FromString,
        )
        self.mutate_call = channel.unary_unary(
            MUTATE,
            request_serializer=echo_pb2.MutateRequest.SerializeToString,
            response_deserializer=echo_pb2.MutateReply.FromString,
        )

    def echo(
        self,
        message: str,
        *,
        metadata: Sequence[tuple[str, str]] = (),
        timeout: float | None = 10.0,
    ) -> grpc.aio.UnaryUnaryCall[echo_pb2.EchoRequest, echo_pb2.EchoReply]:
        """The call object: await it for the reply."""
        call: grpc.aio.UnaryUnaryCall[echo_pb2.EchoRequest, echo_pb2.EchoReply] = self.echo_call(
            echo_pb2.EchoRequest(message=message), metadata=tuple(metadata), timeout=timeout
        )
        return call

    def mutate(
        self,
        account: str,
        amount_minor: int,
        behaviour: str = Behaviour.OK,
        *,
        metadata: Sequence[tuple[str, str]] = (),
        timeout: float | None = 10.0,
    ) -> grpc.aio.UnaryUnaryCall[echo_pb2.MutateRequest, echo_pb2.MutateReply]:
        """The call object: await it for the reply, or read its trailing metadata."""
        request = echo_pb2.MutateRequest(
            account=account, amount_minor=amount_minor, behaviour=behaviour
        )
        call: grpc.aio.UnaryUnaryCall[echo_pb2.MutateRequest, echo_pb2.MutateReply] = (
            self.mutate_call(request, metadata=tuple(metadata), timeout=timeout)
        )
        return call


async def health_status(channel: grpc.aio.Channel, service: str = "") -> int:
    """grpc.health.v1 Check for `service` ("" for the whole server): a ServingStatus value."""
    check = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    reply: health_pb2.HealthCheckResponse = await check(
        health_pb2.HealthCheckRequest(service=service), timeout=10
    )
    return int(reply.status)


async def reflected_services(channel: grpc.aio.Channel) -> list[str]:
    """The service names server reflection lists."""
    info = channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    call = info(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
    names: list[str] = []
    async for response in call:
        names.extend(s.name for s in response.list_services_response.service)
    return names
