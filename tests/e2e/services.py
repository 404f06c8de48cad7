"""The platform's gRPC services as the cross-service suites see them (fuzz, authorisation).

A suite walks SERVICES rather than naming checkout or ledger: each entry says which proto
services a process serves, which module holds its composition root (PERMISSIONS, MUTATING)
and where the in-process platform (harness.Platform) listens for it. Billing and payouts
join every suite by being started in harness.start_platform and listed here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from payplane.grpckit import channel

from .harness import TOKENS, Platform

__all__ = ["SERVICES", "Method", "ServiceUnderTest", "methods"]


@dataclass(frozen=True)
class ServiceUnderTest:
    name: str
    proto_services: tuple[str, ...]  # full names, e.g. payplane.ledger.v1.LedgerService
    proto_modules: tuple[str, ...]  # the generated modules that register them
    bootstrap: str  # its composition root: PERMISSIONS, MUTATING
    port: Callable[[Platform], int]

    def mutating(self) -> frozenset[str]:
        return frozenset(importlib.import_module(self.bootstrap).MUTATING)


@dataclass(frozen=True)
class Method:
    service: ServiceUnderTest
    descriptor: MethodDescriptor

    @property
    def path(self) -> str:
        return f"/{self.descriptor.containing_service.full_name}/{self.descriptor.name}"

    @property
    def proto_service(self) -> str:
        return str(self.descriptor.containing_service.full_name)

    @property
    def name(self) -> str:
        return str(self.descriptor.name)

    @property
    def mutating(self) -> bool:
        return self.path in self.service.mutating()

    @property
    def request_class(self) -> type[Message]:
        return message_factory.GetMessageClass(self.descriptor.input_type)

    @property
    def response_class(self) -> type[Message]:
        return message_factory.GetMessageClass(self.descriptor.output_type)

    def stub(self, platform: Platform, token: str | None) -> Any:
        """A callable for this method over a fresh channel (no token: no credentials)."""
        target = f"127.0.0.1:{self.service.port(platform)}"
        ch = channel(target, token) if token is not None else grpc.aio.insecure_channel(target)
        platform.channels.append(ch)
        return ch.unary_unary(
            self.path,
            request_serializer=self.request_class.SerializeToString,
            response_deserializer=self.response_class.FromString,
        )

    def caller_stub(self, platform: Platform, caller: str) -> Any:
        return self.stub(platform, TOKENS[caller])

    def __str__(self) -> str:
        return f"{self.proto_service.rsplit('.', 1)[-1]}.{self.name}"


SERVICES: tuple[ServiceUnderTest, ...] = (
    ServiceUnderTest(
        name="checkout",
        proto_services=(
            "payplane.checkout.v1.CheckoutService",
            "payplane.checkout.v1.ReviewService",
        ),
        proto_modules=("payplane.checkout.v1.checkout_pb2", "payplane.checkout.v1.review_pb2"),
        bootstrap="checkout.bootstrap",
        port=lambda p: p.checkout_app.grpc_port,
    ),
    ServiceUnderTest(
        name="ledger",
        proto_services=("payplane.ledger.v1.LedgerService",),
        proto_modules=("payplane.ledger.v1.ledger_pb2",),
        bootstrap="ledger.bootstrap",
        port=lambda p: p.ledger_app.grpc_port,
    ),
)


def methods() -> Iterator[Method]:
    """Every RPC of every listed service, in declaration order."""
    pool = descriptor_pool.Default()
    for service in SERVICES:
        for module in service.proto_modules:
            importlib.import_module(module)
        for full_name in service.proto_services:
            for method in pool.FindServiceByName(full_name).methods:
                yield Method(service, method)
