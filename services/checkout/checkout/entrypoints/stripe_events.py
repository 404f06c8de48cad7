"""Stripe webhooks: the ingress publishes each signed event to JetStream; a consumer applies it.

The ingress answers 2xx only after JetStream acknowledged the event (message id = Stripe's
event id, so Stripe's redeliveries are dropped as duplicates). The consumer applies events
order-tolerantly and records each in the inbox once its effect is committed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from nats.js import JetStreamContext
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from payplane.events import Envelope, Inbox, MessageMeta, publish_envelope

__all__ = ["EVENT_TYPES", "STREAM", "SUBJECT_PREFIX", "make_handler", "make_publisher"]

log = logging.getLogger("checkout.webhooks")
STREAM = "STRIPE_CHECKOUT"
SUBJECT_PREFIX = "stripe.checkout"
CONSUMER = "checkout-stripe-events"
# What checkout's webhook endpoint subscribes to at Stripe.
EVENT_TYPES = [
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.requires_action",
    "payment_intent.canceled",
    "payment_intent.processing",
    "payment_intent.amount_capturable_updated",
    "charge.succeeded",
    "charge.failed",
    "charge.captured",
    "charge.refunded",
    "charge.refund.updated",
    "charge.updated",
    "charge.expired",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
    "charge.dispute.closed",
    "radar.early_fraud_warning.created",
    "radar.early_fraud_warning.updated",
    "review.opened",
    "review.closed",
    "refund.created",
    "refund.updated",
    "refund.failed",
]


class EventApplier(Protocol):
    async def apply_stripe_event(self, event: dict[str, Any]) -> None: ...


def make_publisher(js: JetStreamContext) -> Callable[[str, str, bytes], Awaitable[None]]:
    async def publish(event_id: str, event_type: str, raw: bytes) -> None:
        envelope = Envelope(
            event_id=event_id,
            type=event_type,
            source="stripe",
            subject_id=event_id,
            payload_type="stripe.event+json",
            payload=raw,
        )
        await publish_envelope(js, f"{SUBJECT_PREFIX}.{event_type}", envelope, msg_id=event_id)

    return publish


def make_handler(
    checkout: EventApplier, sessions: async_sessionmaker[AsyncSession], inbox: Inbox
) -> Callable[[Envelope, MessageMeta], Awaitable[None]]:
    async def handle(envelope: Envelope, meta: MessageMeta) -> None:
        async with sessions() as session:
            table = inbox.table
            seen = await session.execute(
                select(table.c.event_id).where(
                    table.c.consumer == CONSUMER, table.c.event_id == envelope.event_id
                )
            )
            if seen.first() is not None:
                return
        event = json.loads(envelope.payload)
        await checkout.apply_stripe_event(event)
        async with sessions.begin() as session:
            await inbox.claim(session, CONSUMER, envelope.event_id)

    return handle
