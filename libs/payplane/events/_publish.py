from __future__ import annotations

from collections.abc import Mapping

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import PubAck
from opentelemetry import propagate

from payplane.events.v1.envelope_pb2 import Envelope

from ._errors import PublishError

__all__ = ["MSG_ID_HEADER", "publish_bytes", "publish_envelope", "trace_headers"]

MSG_ID_HEADER = "Nats-Msg-Id"


def trace_headers() -> dict[str, str]:
    """The current W3C trace context (traceparent, tracestate, baggage) as NATS headers."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


async def publish_bytes(
    js: JetStreamContext,
    subject: str,
    data: bytes,
    *,
    msg_id: str,
    headers: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
) -> PubAck:
    """Publish and wait for the PubAck; `msg_id` lets JetStream drop re-publishes.

    `headers=None` sends the current trace context; pass headers to forward stored ones.
    A duplicate inside the stream's window is acknowledged with `ack.duplicate` set.
    """
    hdrs = dict(trace_headers() if headers is None else headers)
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
) -> PubAck:
    """Publish an envelope directly (no outbox); `Nats-Msg-Id` defaults to its event id."""
    return await publish_bytes(
        js,
        subject,
        envelope.SerializeToString(),
        msg_id=msg_id or envelope.event_id,
        headers=headers,
        timeout_s=timeout_s,
    )
