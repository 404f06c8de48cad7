from __future__ import annotations

from collections.abc import Mapping

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import PubAck
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider

from payplane.events.v1.envelope_pb2 import Envelope

from ._errors import PublishError

__all__ = [
    "MSG_ID_HEADER",
    "producer_attributes",
    "publish_bytes",
    "publish_envelope",
    "trace_headers",
]

MSG_ID_HEADER = "Nats-Msg-Id"


def trace_headers() -> dict[str, str]:
    """The current W3C trace context (traceparent, tracestate, baggage) as NATS headers."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def producer_attributes(subject: str, msg_id: str) -> dict[str, str]:
    """A PRODUCER span's attributes (OpenTelemetry's messaging conventions)."""
    return {
        "messaging.system": "nats",
        "messaging.operation.type": "publish",
        "messaging.destination.name": subject,
        "messaging.message.id": msg_id,
    }


async def publish_bytes(
    js: JetStreamContext,
    subject: str,
    data: bytes,
    *,
    msg_id: str,
    headers: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
    tracer_provider: TracerProvider | None = None,
) -> PubAck:
    """Publish and wait for the PubAck; `msg_id` lets JetStream drop re-publishes.

    `headers=None` publishes inside a PRODUCER span (a child of the current span) and sends
    its context, so the consumer's span is the producer's child as it is through the
    outbox; pass headers to forward stored ones (the relay, replays) as they are.
    A duplicate inside the stream's window is acknowledged with `ack.duplicate` set.
    """
    if headers is not None:
        return await _publish(js, subject, data, msg_id, headers, timeout_s)
    tracer = trace.get_tracer("payplane.events", tracer_provider=tracer_provider)
    with tracer.start_as_current_span(
        f"{subject} publish",
        kind=SpanKind.PRODUCER,
        attributes=producer_attributes(subject, msg_id),
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            return await _publish(js, subject, data, msg_id, trace_headers(), timeout_s)
        except PublishError as exc:
            span.set_status(Status(StatusCode.ERROR, type(exc.__cause__ or exc).__name__))
            raise


async def _publish(
    js: JetStreamContext,
    subject: str,
    data: bytes,
    msg_id: str,
    headers: Mapping[str, str],
    timeout_s: float | None,
) -> PubAck:
    hdrs = dict(headers)
    hdrs[MSG_ID_HEADER] = msg_id
    try:
        return await js.publish(subject, data, timeout=timeout_s, headers=hdrs)
    except (nats.errors.Error, nats.js.errors.Error, TimeoutError) as exc:
        raise PublishError(f"publish to {subject!r} not acknowledged: {exc!r}") from exc


async def publish_envelope(
    js: JetStreamContext,
    subject: str,
    envelope: Envelope,
    msg_id: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
    tracer_provider: TracerProvider | None = None,
) -> PubAck:
    """Publish an envelope directly (no outbox); `Nats-Msg-Id` defaults to its event id."""
    return await publish_bytes(
        js,
        subject,
        envelope.SerializeToString(),
        msg_id=msg_id or envelope.event_id,
        headers=headers,
        timeout_s=timeout_s,
        tracer_provider=tracer_provider,
    )
