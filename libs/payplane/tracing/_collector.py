from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span, Status

__all__ = ["CollectedSpan", "CollectedTrace", "OtlpCollector"]

# OTLP's enums, by the names the OpenTelemetry API uses (SpanKind.SERVER, StatusCode.ERROR).
_KINDS = {
    Span.SPAN_KIND_UNSPECIFIED: "UNSPECIFIED",
    Span.SPAN_KIND_INTERNAL: "INTERNAL",
    Span.SPAN_KIND_SERVER: "SERVER",
    Span.SPAN_KIND_CLIENT: "CLIENT",
    Span.SPAN_KIND_PRODUCER: "PRODUCER",
    Span.SPAN_KIND_CONSUMER: "CONSUMER",
}
_STATUSES = {
    Status.STATUS_CODE_UNSET: "UNSET",
    Status.STATUS_CODE_OK: "OK",
    Status.STATUS_CODE_ERROR: "ERROR",
}


@dataclass(frozen=True)
class CollectedSpan:
    """One span as it arrived over OTLP, with the `service.name` of the resource it came in."""

    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str  # "" for a root span
    name: str
    kind: str  # SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL
    service_name: str
    scope: str  # the instrumentation scope (the tracer's name)
    attributes: Mapping[str, Any]
    status: str  # UNSET, OK, ERROR
    start_ns: int
    end_ns: int
    resource: Mapping[str, Any] = field(default_factory=dict)
    events: Sequence[tuple[str, Mapping[str, Any]]] = ()  # (name, attributes): exceptions...
    status_message: str = ""

    def __str__(self) -> str:
        return f"{self.name} [{self.kind} in {self.service_name}]"


@dataclass(frozen=True)
class CollectedTrace:
    """The spans of one trace, with the questions a test asks of them."""

    trace_id: str
    spans: Sequence[CollectedSpan]

    def __iter__(self) -> Iterator[CollectedSpan]:
        return iter(self.spans)

    def __len__(self) -> int:
        return len(self.spans)

    def named(self, name: str) -> list[CollectedSpan]:
        return [s for s in self.spans if s.name == name]

    def one(self, name: str, *, kind: str | None = None) -> CollectedSpan:
        """The one span called `name` (of `kind`); AssertionError naming what is there."""
        found = [s for s in self.named(name) if kind is None or s.kind == kind]
        if len(found) != 1:
            raise AssertionError(
                f"{len(found)} spans named {name!r}{f' of kind {kind}' if kind else ''} in "
                f"trace {self.trace_id}; it holds:\n{self.describe()}"
            )
        return found[0]

    def parent(self, span: CollectedSpan) -> CollectedSpan | None:
        """The span's parent, None for a root or a parent that never arrived."""
        if not span.parent_span_id:
            return None
        return next((s for s in self.spans if s.span_id == span.parent_span_id), None)

    def ancestors(self, span: CollectedSpan) -> list[CollectedSpan]:
        """Parent, grandparent, ... up to the root (or the first missing link)."""
        chain: list[CollectedSpan] = []
        current = self.parent(span)
        while current is not None and current not in chain:
            chain.append(current)
            current = self.parent(current)
        return chain

    def roots(self) -> list[CollectedSpan]:
        return [s for s in self.spans if not s.parent_span_id]

    def services(self) -> set[str]:
        return {s.service_name for s in self.spans}

    def describe(self) -> str:
        """The trace as an indented tree (orphans, whose parent never arrived, at the end)."""
        lines: list[str] = []
        ids = {s.span_id for s in self.spans}

        def walk(span: CollectedSpan, depth: int) -> None:
            lines.append(f"{'  ' * depth}{span}")
            for child in sorted(self.spans, key=lambda s: s.start_ns):
                if child.parent_span_id == span.span_id and child is not span:
                    walk(child, depth + 1)

        for root in sorted(self.roots(), key=lambda s: s.start_ns):
            walk(root, 0)
        for orphan in self.spans:
            if orphan.parent_span_id and orphan.parent_span_id not in ids:
                lines.append(f"(parent {orphan.parent_span_id} missing) {orphan}")
        return "\n".join(lines)


def _value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return _attributes(v.kvlist_value.values)
    return getattr(v, which)


def _attributes(pairs: Sequence[KeyValue]) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs}


def _flatten(resource_spans: ResourceSpans) -> list[CollectedSpan]:
    resource = _attributes(resource_spans.resource.attributes)
    service = str(resource.get("service.name", ""))
    out = []
    for scope_spans in resource_spans.scope_spans:
        for span in scope_spans.spans:
            out.append(
                CollectedSpan(
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent_span_id=span.parent_span_id.hex(),
                    name=span.name,
                    kind=_KINDS.get(span.kind, str(span.kind)),
                    service_name=service,
                    scope=scope_spans.scope.name,
                    attributes=_attributes(span.attributes),
                    status=_STATUSES.get(span.status.code, str(span.status.code)),
                    start_ns=span.start_time_unix_nano,
                    end_ns=span.end_time_unix_nano,
                    resource=resource,
                    events=tuple((e.name, _attributes(e.attributes)) for e in span.events),
                    status_message=span.status.message,
                )
            )
    return out


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, collector: OtlpCollector) -> None:
        self._collector = collector

    async def Export(
        self,
        request: trace_service_pb2.ExportTraceServiceRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        await self._collector._receive(request)
        return trace_service_pb2.ExportTraceServiceResponse()


class OtlpCollector:
    """An OTLP/gRPC trace receiver for tests, speaking the protocol Jaeger and the
    OpenTelemetry Collector speak: point a process at it with
    `OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint` and read what it exported.

        async with OtlpCollector() as collector:
            ...  # run processes with OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint
            trace = await collector.wait_for_trace(trace_id, lambda t: bool(t.named("x")))

    It keeps every `ResourceSpans` as received (`resource_spans`) and, flattened, every span
    with its resource's `service.name` (`spans()`, `trace(trace_id)`). It serves on the
    running event loop (grpc.aio): a test that blocks the loop (a synchronous export to this
    collector, `subprocess.wait`) must do so in a thread.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._server: grpc.aio.Server | None = None
        self._changed = asyncio.Condition()
        self.resource_spans: list[ResourceSpans] = []
        self.exports = 0  # Export requests received

    @property
    def endpoint(self) -> str:
        """What OTEL_EXPORTER_OTLP_ENDPOINT should say (plain-text gRPC, hence http://)."""
        if self._server is None:
            raise RuntimeError("the collector is not started")
        return f"http://{self._host}:{self._port}"

    async def start(self) -> OtlpCollector:
        server = grpc.aio.server()
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _TraceService(self), server
        )
        self._port = server.add_insecure_port(f"{self._host}:{self._port}")
        await server.start()
        self._server = server
        return self

    async def stop(self, grace_s: float | None = 1.0) -> None:
        if self._server is not None:
            await self._server.stop(grace_s)
            self._server = None

    async def __aenter__(self) -> OtlpCollector:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _receive(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        self.exports += 1
        self.resource_spans.extend(request.resource_spans)
        async with self._changed:
            self._changed.notify_all()

    def spans(self) -> list[CollectedSpan]:
        """Every span received so far, in arrival order."""
        return [span for rs in self.resource_spans for span in _flatten(rs)]

    def trace(self, trace_id: str) -> CollectedTrace:
        """The spans of one trace (`trace_id` as 32 hex digits) received so far."""
        trace_id = trace_id.lower()
        return CollectedTrace(trace_id, [s for s in self.spans() if s.trace_id == trace_id])

    def traces(self) -> dict[str, CollectedTrace]:
        by_id: dict[str, list[CollectedSpan]] = {}
        for span in self.spans():
            by_id.setdefault(span.trace_id, []).append(span)
        return {tid: CollectedTrace(tid, spans) for tid, spans in by_id.items()}

    def clear(self) -> None:
        self.resource_spans.clear()

    async def wait_for(
        self, check: Callable[[list[CollectedSpan]], bool], timeout_s: float = 30.0
    ) -> list[CollectedSpan]:
        """Every span, once `check(spans)` holds; TimeoutError (naming what arrived) if it
        does not within `timeout_s`. Re-checked whenever an export arrives."""
        deadline = time.monotonic() + timeout_s
        while True:
            spans = self.spans()
            if check(spans):
                return spans
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                names = sorted({str(s) for s in spans})
                raise TimeoutError(
                    f"not within {timeout_s}s; {len(spans)} spans arrived: {names[:50]}"
                )
            async with self._changed:
                try:
                    await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))
                except TimeoutError:
                    pass

    async def wait_for_trace(
        self, trace_id: str, check: Callable[[CollectedTrace], bool], timeout_s: float = 30.0
    ) -> CollectedTrace:
        """The trace once `check(trace)` holds (spans of one trace arrive in several
        exports, from several processes)."""
        try:
            await self.wait_for(lambda _spans: check(self.trace(trace_id)), timeout_s)
        except TimeoutError:
            raise TimeoutError(
                f"trace {trace_id} incomplete after {timeout_s}s; it holds:\n"
                + self.trace(trace_id).describe()
            ) from None
        return self.trace(trace_id)
