"""The webhook endpoint is unreachable beyond Stripe's retries: the backfill from
GET /v1/events recovers the events, and each is applied once."""

from __future__ import annotations

from typing import Any

from payplane.checkout.v1 import checkout_pb2
from payplane.ledger.v1 import ledger_pb2

from .harness import Platform, eventually


def _undelivered(platform: Platform) -> list[dict[str, Any]]:
    events = platform.stripe.v1.events.list(params={"limit": 100}).data
    return [e.to_dict() for e in events if e.pending_webhooks]


async def test_events_stripe_gave_up_on_are_backfilled_and_applied_once(
    platform: Platform,
) -> None:
    control = platform.emulator.control
    control.configure(webhook_max_attempts=2)
    stub = platform.checkout()
    pending = await platform.pay("k-backfill-3ds", amount=4_100, pm="pm_card_threeDSecure2Required")
    assert pending.status == checkout_pb2.PAYMENT_STATUS_REQUIRES_ACTION

    control.faults(webhook_outage=[platform.webhook_endpoint_id])
    control.call(
        "POST",
        f"/_emulator/payment_intents/{pending.stripe_payment_intent_id}/three_d_secure",
        {"outcome": "pass"},
    )

    # Stripe gives up: every delivery attempt of the success events failed.
    async def undelivered() -> list[dict[str, Any]]:
        return _undelivered(platform)

    await eventually(undelivered, lambda left: not left)
    control.clear_faults()

    async def status() -> int:
        p = await stub.GetPayment(checkout_pb2.GetPaymentRequest(payment_id=pending.id))
        return int(p.status)

    assert await status() == checkout_pb2.PAYMENT_STATUS_REQUIRES_ACTION  # nothing arrived

    # The periodic run skips events younger than its settle time; let Stripe's clock pass it.
    control.advance(seconds=120)
    backfill = platform.checkout_app.backfill
    first = await backfill.run_once()
    assert first.published >= 1
    await eventually(status, lambda s: s == checkout_pb2.PAYMENT_STATUS_SUCCEEDED)
    await eventually(lambda: platform.balance("revenue"), lambda v: v == -4_100)

    # Backfilling again (another replica, the next interval) changes nothing.
    again = await backfill.run_once()
    assert again.published == first.published
    ledger = platform.ledger()
    entries = await ledger.ListEntries(ledger_pb2.ListEntriesRequest(source_id=pending.id))
    assert len(entries.entries) == 1
    assert await platform.balance("revenue") == -4_100
