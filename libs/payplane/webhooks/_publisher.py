from __future__ import annotations

from nats.js import JetStreamContext

from payplane.events import publish_bytes

from ._app import Publish

__all__ = ["jetstream_publisher"]


def jetstream_publisher(
    js: JetStreamContext, subject_prefix: str, *, timeout_s: float | None = None
) -> Publish:
    """Publish the raw event JSON to `<subject_prefix>.<event type>` and wait for the PubAck.

    `Nats-Msg-Id` is the Stripe event id: Stripe's repeated deliveries of one event (each
    freshly signed) are dropped by the stream's duplicate window. A stream must capture
    `<subject_prefix>.>`; without one the publish fails and the ingress answers 503.
    """
    prefix = subject_prefix.rstrip(".")

    async def publish(event_id: str, event_type: str, raw: bytes) -> None:
        await publish_bytes(js, f"{prefix}.{event_type}", raw, msg_id=event_id, timeout_s=timeout_s)

    return publish
