"""The services as the console reaches them: one channel per (service, role), each with
that role's credential, and calls made on behalf of a signed-in person.

Every call names the person in `acting-user` metadata (the services record it beside the
caller in their audit trails) and carries a deadline; a refusal comes back as
ServiceRefused with the service's own status and message, which the pages show as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import Message

from payplane.checkout.v1 import checkout_pb2_grpc, review_pb2_grpc
from payplane.grpckit import ACTING_USER, channel, idempotency_metadata
from payplane.ledger.v1 import ledger_pb2_grpc

from .roles import Role
from .users import User

__all__ = ["CHECKOUT", "LEDGER", "REVIEWS", "Backends", "ServiceRefused", "Services", "Target"]


@dataclass(frozen=True)
class Target:
    """A gRPC service: the address it is reached at (by name) and its stub class."""

    address: str  # "checkout" | "ledger": a key of Backends' addresses
    stub: Any
    label: str  # how pages name it


CHECKOUT = Target("checkout", checkout_pb2_grpc.CheckoutServiceStub, "checkout")
REVIEWS = Target("checkout", review_pb2_grpc.ReviewServiceStub, "checkout")
LEDGER = Target("ledger", ledger_pb2_grpc.LedgerServiceStub, "ledger")


class ServiceRefused(Exception):
    """A service answered with an error status: it is the authority, its word is shown."""

    def __init__(self, target: Target, method: str, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{target.label} {method}: {code.name}: {details}")
        self.target = target
        self.method = method
        self.code = code
        self.details = details


class Backends:
    def __init__(
        self, addresses: Mapping[str, str], credentials: Mapping[Role, str], timeout_s: float
    ) -> None:
        self.addresses = dict(addresses)
        self.credentials = dict(credentials)
        self.timeout_s = timeout_s
        self._channels: dict[tuple[str, Role], grpc.aio.Channel] = {}

    def channel(self, address: str, role: Role) -> grpc.aio.Channel:
        key = (address, role)
        if key not in self._channels:
            token = self.credentials.get(role)
            if token is None:
                raise LookupError(f"no credential for the {role.value} role")
            self._channels[key] = channel(self.addresses[address], token)
        return self._channels[key]

    def for_user(self, user: User) -> Services:
        return Services(self, user)

    async def close(self) -> None:
        for ch in self._channels.values():
            await ch.close(grace=None)
        self._channels.clear()


class Services:
    """The services as one signed-in person sees them (their role's credential)."""

    def __init__(self, backends: Backends, user: User) -> None:
        self.backends = backends
        self.user = user

    async def call(
        self, target: Target, method: str, request: Message, *, idempotency_key: str = ""
    ) -> Any:
        stub = target.stub(self.backends.channel(target.address, self.user.role))
        metadata: tuple[tuple[str, str], ...] = ((ACTING_USER, self.user.name),)
        if idempotency_key:
            metadata = idempotency_metadata(idempotency_key, metadata)
        try:
            return await getattr(stub, method)(
                request, metadata=metadata, timeout=self.backends.timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            raise ServiceRefused(target, method, exc.code(), exc.details() or "") from None
