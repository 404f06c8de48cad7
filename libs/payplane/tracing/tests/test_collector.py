"""OtlpCollector: a real OTLP/gRPC receiver, fed by the SDK's own OTLP exporter over gRPC."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from payplane.tracing import extract, inject
from payplane.tracing.testing import OtlpCollector


def _provider(service: str, endpoint: str) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True))
    )
    return provider


def _two_services(endpoint: str) -> str:
    """A producer in one service and its consumer in another, joined by header context; the
    exports block, so this runs off the collector's event loop."""
    front, back = _provider("front", endpoint), _provider("back", endpoint)
    try:
        with front.get_tracer("t").start_as_current_span("request", kind=SpanKind.SERVER) as root:
            root.set_attribute("amount", 1_200)
            with front.get_tracer("t").start_as_current_span("send", kind=SpanKind.PRODUCER):
                headers = inject({})
        with back.get_tracer("t").start_as_current_span(
            "receive", context=extract(headers), kind=SpanKind.CONSUMER
        ) as consumed:
            consumed.record_exception(ValueError("bad card"))
            consumed.set_status(Status(StatusCode.ERROR, "boom"))
        return format(root.get_span_context().trace_id, "032x")
    finally:
        front.shutdown()
        back.shutdown()


async def test_spans_arrive_with_their_service_name_kind_and_parents() -> None:
    async with OtlpCollector() as collector:
        assert collector.endpoint.startswith("http://127.0.0.1:")
        trace_id = await asyncio.to_thread(_two_services, collector.endpoint)
        trace = await collector.wait_for_trace(trace_id, lambda t: len(t) == 3, timeout_s=30)
    request = trace.one("request", kind="SERVER")
    send = trace.one("send", kind="PRODUCER")
    receive = trace.one("receive", kind="CONSUMER")
    assert (request.service_name, send.service_name, receive.service_name) == (
        "front",
        "front",
        "back",
    )
    assert trace.roots() == [request]
    assert trace.parent(send) == request
    assert trace.parent(receive) == send
    assert trace.ancestors(receive) == [send, request]
    assert request.attributes == {"amount": 1_200}
    assert receive.status == "ERROR" and request.status == "UNSET"
    assert receive.status_message == "boom"
    ((event, details),) = receive.events
    assert event == "exception" and details["exception.message"] == "bad card"
    assert trace.services() == {"front", "back"}
    assert len(trace_id) == 32 and len(request.span_id) == 16
    assert collector.exports >= 3  # one export per span (SimpleSpanProcessor)
    assert len(collector.resource_spans) >= 3
    assert collector.traces().keys() == {trace_id}
    assert "    receive [CONSUMER in back]" in trace.describe()


async def test_a_trace_that_does_not_complete_names_what_arrived() -> None:
    async with OtlpCollector() as collector:
        trace_id = await asyncio.to_thread(_two_services, collector.endpoint)
        await collector.wait_for_trace(trace_id, lambda t: len(t) == 3, timeout_s=30)
        with pytest.raises(TimeoutError, match=r"receive \[CONSUMER in back\]"):
            await collector.wait_for_trace(trace_id, lambda t: len(t) > 3, timeout_s=0.3)
        with pytest.raises(AssertionError, match="0 spans named 'missing'"):
            collector.trace(trace_id).one("missing")
        collector.clear()
        assert collector.spans() == []


async def test_an_unstarted_collector_has_no_endpoint() -> None:
    with pytest.raises(RuntimeError):
        _ = OtlpCollector().endpoint
