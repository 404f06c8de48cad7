"""Refunds moved by what Stripe says, and the sweeper's claims, with a scripted gateway over a
real database (SQLite, and PostgreSQL with TEST_POSTGRES_URL) and the real outbox (what was
published is read back from its table)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from checkout.adapters import tables
from checkout.adapters.repository import PaymentRepository
from checkout.adapters.stripe_clock import SystemClock
from checkout.adapters.stripe_payments import StripePayments, refund_from
from checkout.bootstrap import MIGRATIONS
from checkout.domain.errors import RefundNotAllowed, StripeUnreachable
from checkout.domain.payment import Payment, Refund, Status
from checkout.service.handlers import Checkout, NewPayment, Policy
from checkout.service.sweeper import PendingSweeper
from payplane.checkout.v1 import events_pb2
from payplane.db import create_engine, run_migrations, session_factory
from payplane.db.testing import TestDatabase, db_url_fixture
from payplane.events import Outbox
from payplane.events.v1.envelope_pb2 import Envelope
from payplane.stripe_gateway import InvalidRequest, StripeUnavailable
from payplane.stripe_gateway.testing import FakeGateway

CARD = {"id": "pm_1", "object": "payment_method", "card": {"fingerprint": "fp1", "country": "US"}}


def _bt(bt_id: str, amount: int) -> dict[str, Any]:
    return {"id": bt_id, "currency": "usd", "amount": amount, "fee": 0, "net": amount,
            "exchange_rate": None, "available_on": 1_800_000_000}  # fmt: skip


INTENT = {
    "id": "pi_1", "object": "payment_intent", "status": "succeeded", "amount": 5_000,
    "currency": "usd", "latest_charge": {"id": "ch_1", "object": "charge",
                                          "balance_transaction": _bt("txn_ch", 5_000)},
}  # fmt: skip


def _refund(refund_id: str, status: str, amount: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": "re_1", "object": "refund", "status": status, "amount": amount, "currency": "usd",
        "payment_intent": "pi_1", "charge": "ch_1", "reason": None, "created": 1_800_000_000,
        "metadata": {"payplane_refund_id": refund_id} if refund_id else {},
        "balance_transaction": _bt("txn_re", -amount), **extra,
    }  # fmt: skip


class World:
    def __init__(self, checkout: Checkout, gateway: FakeGateway) -> None:
        self.checkout = checkout
        self.gateway = gateway

    async def paid(self) -> Payment:
        self.gateway.respond("payment_methods.retrieve", CARD)
        self.gateway.respond("payment_intents.create", INTENT)
        return await self.checkout.create_payment(
            "storefront",
            NewPayment(amount=5_000, currency="usd", customer_ref="c", payment_method="pm_1"),
        )

    async def published(self, prefix: str = "payment.refund") -> list[Envelope]:
        async with self.checkout.sessions() as session:
            rows = (await session.execute(select(tables.outbox.c.envelope))).scalars()
            envelopes = [Envelope.FromString(bytes(r)) for r in rows]
        return [e for e in envelopes if e.type.startswith(prefix)]

    async def refunds(self, payment_id: str) -> list[Refund]:
        async with self.checkout.sessions() as session:
            return await PaymentRepository(session).refunds_of(payment_id)


db_url = db_url_fixture()


@pytest.fixture
async def world(db_url: TestDatabase) -> AsyncIterator[World]:
    await run_migrations(db_url.url, MIGRATIONS, schema=db_url.schema)
    engine = create_engine(db_url.url, schema=db_url.schema)
    gateway = FakeGateway()
    checkout = Checkout(
        session_factory(engine),
        StripePayments(gateway),
        Outbox(tables.outbox),
        policy=Policy(pending_sweep_after_s=60),
    )
    try:
        yield World(checkout, gateway)
    finally:
        await engine.dispose()


async def test_a_refund_stripe_fails_later_is_refundable_again_and_published_once(
    world: World,
) -> None:
    paid = await world.paid()
    world.gateway.respond("refunds.create", _refund("", "succeeded", 5_000))
    _, refund = await world.checkout.refund_payment("storefront", paid.id, 0, "")
    assert refund.status == "succeeded" and refund.stripe_refund_id == "re_1"

    failed = refund_from(
        _refund(refund.id, "failed", 5_000, failure_reason="expired_or_canceled_card",
                failure_balance_transaction=_bt("txn_fail", 5_000))
    )  # fmt: skip
    payment, moved = await world.checkout.record_refund(failed, paid.id)
    assert (moved.status, moved.failure_reason) == ("failed", "expired_or_canceled_card")
    assert payment.amount_refunded == 0 and payment.refundable == 5_000
    # The same news again, and stale news after it, change nothing and publish nothing.
    await world.checkout.record_refund(failed, paid.id)
    await world.checkout.record_refund(refund_from(_refund(refund.id, "succeeded", 5_000)), paid.id)
    (row,) = await world.refunds(paid.id)
    assert row.status == "failed"
    events = await world.published()
    assert [e.type for e in events] == ["payment.refunded", "payment.refund_failed"]
    back = events_pb2.PaymentRefundFailed.FromString(events[1].payload)
    assert (back.refund_id, back.status, back.failure_reason) == (
        refund.id, "failed", "expired_or_canceled_card"
    )  # fmt: skip
    assert back.settlement.balance_transaction_id == "txn_fail"
    assert back.settlement.gross.amount_minor == 5_000
    assert events[1].event_id == f"{refund.id}.refund_failed"


async def test_a_reservation_stripe_reports_failed_at_once_is_published_and_given_back(
    world: World,
) -> None:
    paid = await world.paid()
    world.gateway.respond("refunds.create", StripeUnavailable("down", ambiguous=True))
    with pytest.raises(StripeUnreachable):  # the reservation stays, waiting for a retry
        await world.checkout.refund_payment("storefront", paid.id, 2_000, "")
    (reserved,) = await world.refunds(paid.id)
    assert reserved.status == "pending" and not reserved.stripe_refund_id
    # What the sweeper (or a webhook) then learns: Stripe had it, and it failed.
    snap = refund_from(_refund(reserved.id, "failed", 2_000, failure_reason="unknown"))
    payment, refund = await world.checkout.record_refund(snap, paid.id)
    assert refund.stripe_refund_id == "re_1" and refund.status == "failed"
    assert payment.amount_refunded == 0
    assert [e.type for e in await world.published()] == [
        "payment.refunded", "payment.refund_failed"
    ]  # fmt: skip


async def test_stripe_refusing_a_refund_releases_the_reservation_quietly(world: World) -> None:
    paid = await world.paid()
    world.gateway.respond(
        "refunds.create",
        InvalidRequest("Charge ch_1 has been charged back", code="charge_disputed"),
    )
    with pytest.raises(RefundNotAllowed):
        await world.checkout.refund_payment("storefront", paid.id, 0, "")
    (released,) = await world.refunds(paid.id)
    assert (released.status, released.failure_reason) == ("failed", "refused_by_stripe")
    assert (await world.checkout.get_payment(paid.id)).amount_refunded == 0
    assert await world.published() == [], "Stripe never had it: nothing to publish"


async def test_a_refund_made_at_stripe_is_imported_once(world: World) -> None:
    paid = await world.paid()
    outside = refund_from(_refund("", "succeeded", 1_500))
    await world.checkout.record_refund(outside, paid.id)
    await world.checkout.record_refund(outside, paid.id)
    (row,) = await world.refunds(paid.id)
    assert (row.id, row.stripe_refund_id, row.amount) == ("ref_re_1", "re_1", 1_500)
    assert (await world.checkout.get_payment(paid.id)).amount_refunded == 1_500
    assert [e.type for e in await world.published()] == ["payment.refunded"]


async def test_a_resumed_payment_asking_stripe_wins_over_the_sweeps_failure(
    world: World,
) -> None:
    world.gateway.respond("payment_methods.retrieve", CARD)
    world.gateway.respond("payment_intents.create", StripeUnavailable("down", ambiguous=True))
    with pytest.raises(StripeUnreachable):  # left pending, with no intent
        await world.checkout.create_payment(
            "storefront",
            NewPayment(amount=5_000, currency="usd", customer_ref="c", payment_method="pm_1"),
        )
    (pending,) = (
        await world.checkout.list_payments(customer_ref="c", status=None, page_size=5,
                                           page_token="")
    )[0]  # fmt: skip
    later = pending.created_at + 120  # past the sweep age of 60 s
    async with world.checkout.sessions.begin() as session:
        repo = PaymentRepository(session)
        assert await repo.claim_pending(pending.id, later, later - 60, later + 60)
    # The caller's retry asks Stripe after the sweep claimed the payment ...
    assert await world.checkout._hold_for_stripe(pending.id)
    # ... so the sweep, having found no intent, must not fail it.
    assert await world.checkout.fail_interrupted(pending.id, later + 60) is None
    assert (await world.checkout.get_payment(pending.id)).status is Status.PENDING

    # The other order: the sweep fails it first, and then the retry does not ask Stripe.
    async with world.checkout.sessions.begin() as session:
        repo = PaymentRepository(session)
        assert await repo.claim_pending(pending.id, later + 200, later + 140, later + 260)
    failed = await world.checkout.fail_interrupted(pending.id, later + 260)
    assert failed is not None and failed.status is Status.FAILED
    assert not await world.checkout._hold_for_stripe(pending.id)
    async with world.checkout.sessions() as session:
        assert await PaymentRepository(session).pending_due(later + 10_000, later + 10_000) == []


async def test_replicas_sweeping_together_settle_an_orphan_refund_once(world: World) -> None:
    paid = await world.paid()
    world.gateway.respond("refunds.create", StripeUnavailable("down", ambiguous=True))
    with pytest.raises(StripeUnreachable):  # the caller gives up and never retries
        await world.checkout.refund_payment("storefront", paid.id, 1_000, "")
    (reserved,) = await world.refunds(paid.id)
    # Two replicas, two minutes later (past the sweep age), one shared database and Stripe.
    later = Checkout(
        world.checkout.sessions,
        world.checkout.stripe,
        world.checkout.outbox,
        policy=world.checkout.policy,
        clock=lambda: reserved.created_at + 120,
    )
    replicas = [PendingSweeper(later, SystemClock()) for _ in range(2)]
    world.gateway.respond("refunds.list", {"object": "list", "data": [], "has_more": False})
    world.gateway.respond("refunds.create", _refund(reserved.id, "succeeded", 1_000))
    settled = await asyncio.gather(*(r.sweep_refunds() for r in replicas))
    assert sorted(settled) == [0, 1]
    assert len(world.gateway.calls_to("refunds.list")) == 1
    creates = world.gateway.calls_to("refunds.create")
    assert len(creates) == 2 and creates[0].idempotency_key == creates[1].idempotency_key
    (done,) = await world.refunds(paid.id)
    assert (done.status, done.stripe_refund_id) == ("succeeded", "re_1")
    assert [e.type for e in await world.published()] == ["payment.refunded"]
