from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import grpc
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from ._pipeline import IDEMPOTENCY_KEY

__all__ = ["channel", "idempotency_metadata", "new_idempotency_key"]

Metadata = tuple[tuple[str, str], ...]


def new_idempotency_key() -> str:
    """A fresh key for one logical operation; reuse it for every retry of that operation."""
    return uuid.uuid4().hex


def idempotency_metadata(key: str, metadata: Sequence[tuple[str, str]] = ()) -> Metadata:
    """`metadata` plus the idempotency-key entry, for a mutating call:

    await stub.CreatePayment(request, metadata=idempotency_metadata(key), timeout=5)
    """
    return (*((k, v) for k, v in metadata if k != IDEMPOTENCY_KEY), (IDEMPOTENCY_KEY, key))


def _with(details: Any, extra: Sequence[tuple[str, str]]) -> Any:
    metadata = grpc.aio.Metadata(*tuple(details.metadata or ()))
    for key, value in extra:
        metadata[key] = value
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


# grpc-stubs declares these generic; the runtime classes are not subscriptable.
if TYPE_CHECKING:
    _UnaryUnary = grpc.aio.UnaryUnaryClientInterceptor[Any, Any]
    _UnaryStream = grpc.aio.UnaryStreamClientInterceptor[Any, Any]
    _StreamUnary = grpc.aio.StreamUnaryClientInterceptor[Any, Any]
    _StreamStream = grpc.aio.StreamStreamClientInterceptor[Any, Any]
else:
    _UnaryUnary = grpc.aio.UnaryUnaryClientInterceptor
    _UnaryStream = grpc.aio.UnaryStreamClientInterceptor
    _StreamUnary = grpc.aio.StreamUnaryClientInterceptor
    _StreamStream = grpc.aio.StreamStreamClientInterceptor


class _Bearer:
    """Adds `authorization: Bearer <token>` to every call (insecure channels refuse call
    credentials, so the token travels as plain metadata)."""

    def __init__(self, token: str) -> None:
        self._entry = (("authorization", f"Bearer {token}"),)

    async def _call(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with(details, self._entry), request)


# grpc.aio files an interceptor under the first of the four kinds it subclasses, so each kind
# needs its own class.
class _BearerUnaryUnary(_Bearer, _UnaryUnary):
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await self._call(continuation, details, request)


class _BearerUnaryStream(_Bearer, _UnaryStream):
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await self._call(continuation, details, request)


class _BearerStreamUnary(_Bearer, _StreamUnary):
    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await self._call(continuation, details, requests)


class _BearerStreamStream(_Bearer, _StreamStream):
    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await self._call(continuation, details, requests)


class _ClientTracing(_UnaryUnary):
    """A CLIENT span per unary call, its context sent as W3C traceparent metadata."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        service, _, rpc = method.lstrip("/").partition("/")
        with self._tracer.start_as_current_span(
            method.lstrip("/"),
            kind=SpanKind.CLIENT,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": rpc},
        ) as span:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            call = await continuation(_with(details, tuple(carrier.items())), request)
            code = await call.code()
            span.set_attribute("rpc.grpc.status_code", code.value[0])
            if code != grpc.StatusCode.OK:
                span.set_status(Status(StatusCode.ERROR, code.name))
            return call


def channel(
    target: str,
    token: str,
    *,
    tracing: bool = True,
    tracer_provider: trace.TracerProvider | None = None,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.aio.Channel:
    """An insecure grpc.aio channel to `target` presenting `token` as a Bearer credential.

    Plain text: meant for loopback and in-cluster traffic behind the platform's network
    policy. With `tracing`, every unary call is a CLIENT span whose context the server joins.
    """
    interceptors: list[Any] = []
    if tracing:
        tracer = trace.get_tracer("payplane.grpckit", tracer_provider=tracer_provider)
        interceptors.append(_ClientTracing(tracer))
    interceptors.extend(
        kind(token)
        for kind in (_BearerUnaryUnary, _BearerUnaryStream, _BearerStreamUnary, _BearerStreamStream)
    )
    return grpc.aio.insecure_channel(
        target, options=list(options), interceptors=cast(Any, interceptors)
    )
