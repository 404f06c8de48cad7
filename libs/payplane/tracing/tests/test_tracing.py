from __future__ import annotations

import logging

import pytest
from opentelemetry import trace

from payplane.tracing import TraceContextFilter, extract, inject
from payplane.tracing.testing import InMemorySpans


def test_context_crosses_a_header_hop_as_parent() -> None:
    spans = InMemorySpans()
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("producer", kind=trace.SpanKind.PRODUCER):
        headers = inject({})
    assert "traceparent" in headers
    with tracer.start_as_current_span(
        "consumer", context=extract(headers), kind=trace.SpanKind.CONSUMER
    ):
        pass
    (producer,) = spans.named("producer")
    (consumer,) = spans.named("consumer")
    assert consumer.parent is not None
    assert consumer.parent.span_id == producer.context.span_id
    assert consumer.context.trace_id == producer.context.trace_id


def test_log_records_carry_trace_ids(caplog: pytest.LogCaptureFixture) -> None:
    InMemorySpans()
    logger = logging.getLogger("payplane.test")
    logger.addFilter(TraceContextFilter("svc"))
    with caplog.at_level(logging.INFO, logger="payplane.test"):
        with trace.get_tracer("t").start_as_current_span("work") as span:
            logger.info("inside")
        logger.info("outside")
    inside, outside = caplog.records[-2:]
    assert inside.trace_id == format(span.get_span_context().trace_id, "032x")  # type: ignore[attr-defined]
    assert outside.trace_id == "-"  # type: ignore[attr-defined]
