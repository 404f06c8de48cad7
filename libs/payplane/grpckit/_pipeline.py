"""The server interceptor: one composite interceptor running the stages in INTERCEPTOR_ORDER.

Why one composite instead of six grpc.aio.ServerInterceptors: the stages share per-call state
(the authenticated caller scopes idempotency keys; the idempotency stage must see the mapped
status of a failure to decide whether to store it), the handler is re-wrapped once per call
instead of six times, and the order is data (the tuple below) rather than the order of a list
someone may reshuffle in a composition root.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import grpc
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import Message
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from payplane.idempotency import (
    CODE_OK,
    IdempotencyBackend,
    IdempotencyError,
    Record,
    Replay,
    bind_current,
)

from ._auth import CallerAuth, is_open_method
from .errors import bounded, status_for

__all__ = [
    "IDEMPOTENCY_KEY",
    "INTERCEPTOR_ORDER",
    "REPLAYED",
    "PayplaneInterceptor",
    "RpcFailure",
    "current_caller",
]

log = logging.getLogger("payplane.grpckit")

# Outermost first. Each stage wraps the ones after it; the handler runs inside "errors".
INTERCEPTOR_ORDER: tuple[str, ...] = (
    "tracing",  # a SERVER span per RPC, parented by the caller's W3C traceparent
    "authentication",  # authorization: Bearer <token> -> caller name; else UNAUTHENTICATED
    "authorisation",  # caller allowed for this method?; else PERMISSION_DENIED
    "deadline",  # default/capped deadline; too little time left -> DEADLINE_EXCEEDED now
    "idempotency",  # idempotency-key: replay, mismatch, in progress, recovery points
    "errors",  # exceptions -> status codes via the one table; INTERNAL with an error id
)

IDEMPOTENCY_KEY = "idempotency-key"
REPLAYED = "idempotent-replayed"

# Codes that say "this request, as sent, will not succeed": the outcome is definitive. Any other
# failure (INTERNAL, UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED, ...) may succeed on a retry.
_DEFINITIVE = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)
# Server-side span status is ERROR only for these (OpenTelemetry gRPC semantic conventions).
_SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
_CODE_BY_INT = {code.value[0]: code for code in grpc.StatusCode}

_caller: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "payplane_grpckit_caller", default=None
)


def current_caller() -> str | None:
    """The authenticated caller of the RPC this code runs inside, or None."""
    return _caller.get()


class RpcFailure(Exception):
    """A status on its way out. Stages raise it; the interceptor turns it into context.abort."""

    def __init__(
        self,
        code: grpc.StatusCode,
        details: str,
        *,
        aborted: BaseException | None = None,
        error_id: str | None = None,
    ) -> None:
        details = bounded(details)  # the one place every outgoing status passes
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details
        self.aborted = aborted  # the handler called context.abort itself: re-raise this
        self.error_id = error_id


# grpc-stubs declares these generic; the runtime classes are not subscriptable.
if TYPE_CHECKING:
    _Context = grpc.aio.ServicerContext[Any, Any]
    _ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    _Context = grpc.aio.ServicerContext
    _ServerInterceptor = grpc.aio.ServerInterceptor


@dataclass
class _Call:
    method: str
    request: Message
    context: _Context
    metadata: dict[str, str]
    caller: str | None = None
    trailing: list[tuple[str, str]] = field(default_factory=list)


_Proceed = Callable[[], Awaitable[Message]]

_Handler = Callable[[Message, _Context], Awaitable[Message]]


class PayplaneInterceptor(_ServerInterceptor):
    def __init__(
        self,
        *,
        auth: CallerAuth,
        idempotency: IdempotencyBackend | None,
        mutating_methods: frozenset[str],
        deadline_floor_s: float,
        default_deadline_s: float,
        max_deadline_s: float,
        error_table: Mapping[type[BaseException], grpc.StatusCode],
        tracer: trace.Tracer,
    ) -> None:
        self._auth = auth
        self._store = idempotency
        self._mutating = mutating_methods
        self._floor = deadline_floor_s
        self._default_deadline = default_deadline_s
        self._max_deadline = max_deadline_s
        self._table = error_table
        self._tracer = tracer
        self._stages: tuple[Callable[[_Call, _Proceed], Awaitable[Message]], ...] = tuple(
            getattr(self, f"_{name}") for name in INTERCEPTOR_ORDER
        )
        self._response_types: dict[str, type[Message]] = {}

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        method = _method_name(handler_call_details)
        if handler is None or is_open_method(method):
            return handler
        unary = getattr(handler, "unary_unary", None)
        if unary is None:
            # Streaming methods get the caller checks only (metadata is all they need).
            metadata = _metadata_dict(handler_call_details.invocation_metadata)
            try:
                self._check_caller(method, metadata)
            except RpcFailure as failure:
                return _refusing(handler, failure)
            return handler

        async def run(request: Message, context: _Context) -> Message:
            return await self._run(method, unary, request, context)

        return grpc.unary_unary_rpc_method_handler(
            run,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    async def _run(
        self,
        method: str,
        handler: _Handler,
        request: Message,
        context: _Context,
    ) -> Message:
        call = _Call(method, request, context, _metadata_dict(context.invocation_metadata()))

        async def innermost() -> Message:
            return await handler(request, context)

        proceed: _Proceed = innermost
        for stage in reversed(self._stages):
            proceed = _bind(stage, call, proceed)
        try:
            response = await proceed()
        except RpcFailure as failure:
            await self._abort(call, failure)
        except Exception as exc:  # a stage itself failed (e.g. the idempotency store)
            await self._abort(call, self._to_failure(call, exc))
        if call.trailing:
            context.set_trailing_metadata(tuple(call.trailing))
        return response

    async def _abort(self, call: _Call, failure: RpcFailure) -> NoReturn:
        if failure.aborted is not None:
            raise failure.aborted
        await call.context.abort(failure.code, failure.details, tuple(call.trailing))

    # -- stages, in INTERCEPTOR_ORDER ---------------------------------------------------

    async def _tracing(self, call: _Call, proceed: _Proceed) -> Message:
        service, _, rpc = call.method.lstrip("/").partition("/")
        with self._tracer.start_as_current_span(
            call.method.lstrip("/"),
            context=propagate.extract(call.metadata),
            kind=SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": rpc},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                response = await proceed()
            except RpcFailure as failure:
                span.set_attribute("rpc.grpc.status_code", failure.code.value[0])
                if failure.error_id:
                    span.set_attribute("payplane.error_id", failure.error_id)
                if failure.code in _SERVER_FAULTS:
                    span.set_status(Status(StatusCode.ERROR, failure.code.name))
                raise
            except BaseException:
                span.set_attribute("rpc.grpc.status_code", grpc.StatusCode.CANCELLED.value[0])
                raise
            span.set_attribute("rpc.grpc.status_code", grpc.StatusCode.OK.value[0])
            return response

    async def _authentication(self, call: _Call, proceed: _Proceed) -> Message:
        call.caller = self._authenticate(call.metadata)
        token = _caller.set(call.caller)
        try:
            return await proceed()
        finally:
            _caller.reset(token)

    async def _authorisation(self, call: _Call, proceed: _Proceed) -> Message:
        assert call.caller is not None
        self._authorise(call.caller, call.method)
        return await proceed()

    async def _deadline(self, call: _Call, proceed: _Proceed) -> Message:
        remaining = call.context.time_remaining()
        if remaining is not None and remaining < self._floor:
            raise RpcFailure(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"deadline too short: {remaining:.3f}s left, at least {self._floor}s needed",
            )
        budget = self._default_deadline if remaining is None else remaining
        budget = min(budget, self._max_deadline)
        timeout = asyncio.timeout(budget)
        try:
            async with timeout:
                return await proceed()
        except TimeoutError:
            if not timeout.expired():
                raise
            raise RpcFailure(
                grpc.StatusCode.DEADLINE_EXCEEDED, f"server deadline of {budget:.3f}s exceeded"
            ) from None

    async def _idempotency(self, call: _Call, proceed: _Proceed) -> Message:
        if call.method not in self._mutating:
            return await proceed()
        assert self._store is not None and call.caller is not None
        key = call.metadata.get(IDEMPOTENCY_KEY, "").strip()
        if not key:
            raise RpcFailure(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{call.method} changes state: send an {IDEMPOTENCY_KEY} metadata entry",
            )
        digest = hashlib.sha256(call.request.SerializeToString(deterministic=True)).hexdigest()
        try:
            outcome = await self._store.begin(call.caller, call.method, key, digest)
        except IdempotencyError as exc:
            raise self._to_failure(call, exc) from None
        if isinstance(outcome, Replay):
            call.trailing.append((REPLAYED, "true"))
            if outcome.code != CODE_OK:
                code = _CODE_BY_INT.get(outcome.code, grpc.StatusCode.UNKNOWN)
                raise RpcFailure(code, outcome.details)
            return self._response_type(call.method).FromString(outcome.response)
        record = outcome.record
        try:
            with bind_current(record):
                response = await proceed()
        except RpcFailure as failure:
            await self._settle(record, failure)
            raise
        except BaseException:
            # Cancelled (caller gone, deadline, shutdown): let a retry resume at once.
            await self._quietly(asyncio.shield(self._store.release(record)), record, "release")
            raise
        try:
            await self._store.finish(record, response.SerializeToString(deterministic=True))
        except IdempotencyError as exc:
            raise self._to_failure(call, exc) from None
        return response

    async def _errors(self, call: _Call, proceed: _Proceed) -> Message:
        try:
            return await proceed()
        except RpcFailure:
            raise
        except grpc.aio.AbortError as exc:
            # The handler called context.abort itself; the status is already on the context.
            code = call.context.code() or grpc.StatusCode.UNKNOWN
            raise RpcFailure(code, call.context.details() or "", aborted=exc) from None
        except Exception as exc:
            raise self._to_failure(call, exc) from None

    # -- helpers -------------------------------------------------------------------------

    def _authenticate(self, metadata: Mapping[str, str]) -> str:
        caller = self._auth.authenticate(metadata.get("authorization"))
        if caller is None:
            raise RpcFailure(
                grpc.StatusCode.UNAUTHENTICATED,
                "missing or unknown credentials: send authorization: Bearer <token>",
            )
        return caller

    def _authorise(self, caller: str, method: str) -> None:
        if not self._auth.allows(caller, method):
            raise RpcFailure(
                grpc.StatusCode.PERMISSION_DENIED, f"caller {caller!r} may not call {method}"
            )

    def _check_caller(self, method: str, metadata: Mapping[str, str]) -> None:
        self._authorise(self._authenticate(metadata), method)

    def _to_failure(self, call: _Call, exc: BaseException) -> RpcFailure:
        code = status_for(exc, self._table)
        if code is not None:
            return RpcFailure(code, str(exc))
        error_id = uuid.uuid4().hex
        log.error(
            "unexpected error in %s for caller %s (error id %s)",
            call.method,
            call.caller,
            error_id,
            exc_info=exc,
        )
        span = trace.get_current_span()
        span.record_exception(exc, attributes={"payplane.error_id": error_id})
        return RpcFailure(
            grpc.StatusCode.INTERNAL, f"internal error (error id {error_id})", error_id=error_id
        )

    async def _settle(self, record: Record, failure: RpcFailure) -> None:
        """Decide what a failed attempt leaves behind for retries with the same key."""
        assert self._store is not None
        if failure.code not in _DEFINITIVE:
            # Might succeed later: keep the recovery point, free the lease, resume on retry.
            await self._quietly(self._store.release(record), record, "release")
        elif record.recovery_point is None:
            # Refused before any side effect: forget the key so a corrected request can use it.
            await self._quietly(self._store.abandon(record), record, "abandon")
        else:
            # Refused after side effects: that is the operation's outcome; replay it.
            await self._quietly(
                self._store.finish(record, b"", failure.code.value[0], failure.details),
                record,
                "store the failure of",
            )

    @staticmethod
    async def _quietly(action: Awaitable[object], record: Record, what: str) -> None:
        # The caller's status matters more than our bookkeeping: log, never mask it.
        try:
            await action
        except Exception:
            log.exception("could not %s idempotency key %r of %s", what, record.key, record.method)

    def _response_type(self, method: str) -> type[Message]:
        cls = self._response_types.get(method)
        if cls is None:
            full_name = method.lstrip("/").replace("/", ".")
            descriptor = descriptor_pool.Default().FindMethodByName(full_name)
            cls = message_factory.GetMessageClass(descriptor.output_type)
            self._response_types[method] = cls
        return cls


def _bind(
    stage: Callable[[_Call, _Proceed], Awaitable[Message]], call: _Call, proceed: _Proceed
) -> _Proceed:
    async def bound() -> Message:
        return await stage(call, proceed)

    return bound


def _method_name(details: grpc.HandlerCallDetails) -> str:
    method: str | bytes = details.method
    return method.decode() if isinstance(method, bytes) else method


def _metadata_dict(metadata: Any) -> dict[str, str]:
    """Text metadata as a dict (keys lower-case, last value wins); binary entries skipped."""
    result: dict[str, str] = {}
    for key, value in metadata or ():
        if isinstance(value, str):
            result[key.lower()] = value
    return result


def _refusing(handler: Any, failure: RpcFailure) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same streaming shape as `handler` that fails with `failure`."""

    async def refuse(_request: Any, context: _Context) -> Any:
        await context.abort(failure.code, failure.details)

    kwargs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(refuse, **kwargs)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(refuse, **kwargs)
    return grpc.stream_stream_rpc_method_handler(refuse, **kwargs)
