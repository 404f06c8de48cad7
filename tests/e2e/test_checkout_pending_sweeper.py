"""The pending sweeper settles what an attempt left behind when its caller never retried:
a refund Stripe never had is completed once with the same key, one Stripe had is recorded;
a payment whose intent was never created fails cleanly, one Stripe has is completed.

Webhooks are held back (an outage at the emulator) so only the sweeper can settle them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from checkout.adapters.repository import PaymentRepository
from checkout.adapters.stripe_payments import StripePayments
from checkout.domain.declines import INTERRUPTED_CODE
from checkout.domain.payment import Refund
from checkout.service.handlers import Checkout
from payplane.checkout.v1 import checkout_pb2
from payplane.db.testing import TestDatabase
from payplane.grpckit import idempotency_metadata
from stripe_emulator.testing import EmulatorHandle

from .checkout_platform import STRIPE_KEY, CheckoutPlatform, running_checkout, until

S = checkout_pb2
SWEEP_AFTER_S = 4.0  # well above a Stripe call here, even on a loaded machine


class _Died(Exception):
    """The attempt died here (raised where a kill -9 would have stopped it)."""


@pytest.fixture
async def cp(
    emulator: EmulatorHandle, tmp_path: Path, db_url: TestDatabase
) -> AsyncIterator[CheckoutPlatform]:
    """checkout on SQLite and, with TEST_POSTGRES_URL, PostgreSQL; a quick sweeper."""
    async with running_checkout(
        emulator,
        tmp_path,
        db_url,
        pending_sweep_after_s=SWEEP_AFTER_S,
        pending_sweep_interval_s=0.2,
    ) as p:
        yield p


def die_once(monkeypatch: pytest.MonkeyPatch, cls: type, name: str) -> list[str]:
    real = getattr(cls, name)
    died: list[str] = []

    async def dying(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not died:
            died.append(name)
            raise _Died(f"killed in {name}")
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(cls, name, dying)
    return died


def webhooks_down(cp: CheckoutPlatform) -> None:
    cp.emulator.control.faults(webhook_outage=[cp.webhook_endpoint_id])


async def _refund_rows(cp: CheckoutPlatform, payment_id: str) -> list[Refund]:
    async with cp.app.checkout.sessions() as session:
        return await PaymentRepository(session).refunds_of(payment_id)


async def _refund_dies(cp: CheckoutPlatform, payment_id: str, amount: int) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await cp.checkout().RefundPayment(
            S.RefundPaymentRequest(payment_id=payment_id, amount_minor=amount),
            metadata=idempotency_metadata(f"k-refund-{amount}"),
            timeout=30,
        )
    assert err.value.code() == grpc.StatusCode.INTERNAL  # and the caller never comes back


def executed(cp: CheckoutPlatform, path: str) -> list[dict[str, Any]]:
    return [
        e
        for e in cp.emulator.control.requests(method="POST", path=path)
        if e["status"] in (200, 402) and not e["replayed"]
    ]


async def test_a_refund_stripe_never_had_is_completed_once_by_the_sweeper(
    cp: CheckoutPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    paid = await cp.pay("k-pay", amount=9_000)
    webhooks_down(cp)
    died = die_once(monkeypatch, StripePayments, "refund")  # reserved, then dead before Stripe
    await _refund_dies(cp, paid.id, 4_000)
    assert died
    (reserved,) = await _refund_rows(cp, paid.id)
    assert reserved.status == "pending" and not reserved.stripe_refund_id
    assert (await cp.get(paid.id)).amount_refunded.amount_minor == 4_000  # held meanwhile

    rows = await until(
        lambda: _refund_rows(cp, paid.id), lambda r: r[0].status == "succeeded", timeout_s=30
    )
    assert rows[0].stripe_refund_id.startswith("re_")
    (at_stripe,) = executed(cp, "/v1/refunds")
    assert at_stripe["idempotency_key"] and len(executed(cp, "/v1/refunds")) == 1
    refunds = cp.emulator.stripe_client(STRIPE_KEY).v1.refunds.list(
        params={"payment_intent": paid.stripe_payment_intent_id}
    )
    assert [(r.amount, r.metadata["payplane_refund_id"]) for r in refunds.data] == [
        (4_000, reserved.id)
    ]
    after = await cp.get(paid.id)
    assert after.amount_refunded.amount_minor == 4_000
    published = await until(
        lambda: cp.published("checkout.payment.refunded"), lambda e: len(e) == 1, timeout_s=10
    )
    assert published[0][1].refund_id == reserved.id
    assert published[0][1].settlement.gross.amount_minor == -4_000


async def test_a_refund_stripe_made_is_recorded_by_the_sweeper_not_made_again(
    cp: CheckoutPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    paid = await cp.pay("k-pay", amount=9_000)
    webhooks_down(cp)
    died = die_once(monkeypatch, Checkout, "record_refund")  # Stripe refunded, then death
    await _refund_dies(cp, paid.id, 9_000)
    assert died and len(executed(cp, "/v1/refunds")) == 1
    rows = await until(
        lambda: _refund_rows(cp, paid.id), lambda r: r[0].status == "succeeded", timeout_s=30
    )
    assert rows[0].stripe_refund_id.startswith("re_")
    assert len(executed(cp, "/v1/refunds")) == 1, "the sweeper found it; nothing refunded twice"
    assert (await cp.get(paid.id)).amount_refunded.amount_minor == 9_000


async def test_a_payment_stripe_never_had_fails_cleanly(
    cp: CheckoutPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    webhooks_down(cp)
    died = die_once(monkeypatch, StripePayments, "create_and_confirm")
    with pytest.raises(grpc.aio.AioRpcError):
        await cp.pay("k-orphan", amount=2_500)
    assert died
    page = await cp.checkout().ListPayments(S.ListPaymentsRequest(), timeout=10)
    (orphan,) = page.payments
    assert orphan.status == S.PAYMENT_STATUS_PENDING
    failed = await until(
        lambda: cp.get(orphan.id), lambda p: p.status == S.PAYMENT_STATUS_FAILED, timeout_s=30
    )
    assert failed.decline.code == INTERRUPTED_CODE
    assert failed.decline.advice == S.RETRY_ADVICE_RETRY_LATER
    assert executed(cp, "/v1/payment_intents") == [], "Stripe was never asked"
    events = await until(
        lambda: cp.published("checkout.payment.failed"), lambda e: len(e) == 1, timeout_s=10
    )
    assert events[0][1].payment_id == orphan.id and events[0][1].code == INTERRUPTED_CODE


async def test_a_payment_stripe_has_is_completed_by_the_sweeper(
    cp: CheckoutPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    webhooks_down(cp)
    died = die_once(monkeypatch, Checkout, "apply_intent")  # Stripe charged, then death
    with pytest.raises(grpc.aio.AioRpcError):
        await cp.pay("k-charged", amount=3_100)
    assert died and len(executed(cp, "/v1/payment_intents")) == 1
    page = await cp.checkout().ListPayments(S.ListPaymentsRequest(), timeout=10)
    (charged,) = page.payments
    assert charged.status == S.PAYMENT_STATUS_PENDING and not charged.stripe_payment_intent_id
    done = await until(
        lambda: cp.get(charged.id), lambda p: p.status == S.PAYMENT_STATUS_SUCCEEDED, timeout_s=30
    )
    assert done.stripe_payment_intent_id.startswith("pi_")
    assert len(executed(cp, "/v1/payment_intents")) == 1
    events = await until(
        lambda: cp.published("checkout.payment.succeeded"), lambda e: len(e) == 1, timeout_s=10
    )
    assert events[0][1].payment_id == charged.id
    assert events[0][1].settlement.gross.amount_minor == 3_100
