"""Stripe's refund events keep checkout's refunds in step: a refund made at Stripe directly
is imported (counted against its payment, published, booked); a refund checkout made whose
recording was lost is recorded from its webhook, once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest

from checkout.adapters.repository import PaymentRepository
from checkout.domain.payment import Refund
from checkout.service.handlers import Checkout
from checkout.service.refund_book import imported_refund_id
from payplane.checkout.v1 import checkout_pb2
from payplane.grpckit import idempotency_metadata
from stripe_emulator.testing import EmulatorHandle

from .checkout_platform import STRIPE_KEY, running_checkout, until
from .harness import Platform, eventually

S = checkout_pb2


async def _rows(checkout: Checkout, payment_id: str) -> list[Refund]:
    async with checkout.sessions() as session:
        return await PaymentRepository(session).refunds_of(payment_id)


async def test_a_refund_made_at_stripe_directly_is_imported_and_booked(platform: Platform) -> None:
    paid = await platform.pay("k-pay", amount=10_000)
    made = platform.stripe.v1.refunds.create(
        params={"payment_intent": paid.stripe_payment_intent_id, "amount": 2_500}
    )
    checkout = platform.checkout_app.checkout
    rows = await eventually(lambda: _rows(checkout, paid.id), lambda r: len(r) == 1)
    assert rows[0].id == imported_refund_id(made.id)
    assert (rows[0].stripe_refund_id, rows[0].status, rows[0].amount) == (
        made.id, "succeeded", 2_500
    )  # fmt: skip
    stub = platform.checkout()
    after = await stub.GetPayment(S.GetPaymentRequest(payment_id=paid.id), timeout=10)
    assert after.amount_refunded.amount_minor == 2_500
    await eventually(lambda: platform.balance("refunds"), lambda v: v == 2_500)

    # What Stripe refunded outside checkout is no longer refundable through it.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.RefundPayment(
            S.RefundPaymentRequest(payment_id=paid.id, amount_minor=8_000),
            metadata=idempotency_metadata("k-too-much"),
            timeout=30,
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    rest = await stub.RefundPayment(
        S.RefundPaymentRequest(payment_id=paid.id, amount_minor=0),
        metadata=idempotency_metadata("k-rest"),
        timeout=30,
    )
    assert rest.amount.amount_minor == 7_500
    await eventually(lambda: platform.balance("refunds"), lambda v: v == 10_000)
    # Every webhook of both refunds applied: still exactly two refund rows.
    assert len(await _rows(checkout, paid.id)) == 2


async def test_a_refund_whose_recording_was_lost_is_recorded_from_its_webhook(
    emulator: EmulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sweeper is far off: only Stripe's events can record the refund.
    async with running_checkout(emulator, tmp_path, pending_sweep_after_s=3_600) as cp:
        paid = await cp.pay("k-pay", amount=6_000)
        real = Checkout.record_refund
        lost: list[str] = []

        async def lose_once(self: Checkout, *args: Any, **kwargs: Any) -> Any:
            if not lost:
                lost.append("died after Stripe refunded")
                raise RuntimeError("the attempt died after Stripe refunded")
            return await real(self, *args, **kwargs)

        monkeypatch.setattr(Checkout, "record_refund", lose_once)
        with pytest.raises(grpc.aio.AioRpcError):
            await cp.checkout().RefundPayment(
                S.RefundPaymentRequest(payment_id=paid.id, amount_minor=6_000),
                metadata=idempotency_metadata("k-refund"),
                timeout=30,
            )
        rows = await until(
            lambda: _rows(cp.app.checkout, paid.id), lambda r: r[0].status == "succeeded"
        )
        refunds = cp.emulator.stripe_client(STRIPE_KEY).v1.refunds.list(
            params={"payment_intent": paid.stripe_payment_intent_id}
        )
        assert [r.id for r in refunds.data] == [rows[0].stripe_refund_id]
        events = await until(
            lambda: cp.published("checkout.payment.refunded"), lambda e: len(e) == 1, timeout_s=10
        )
        assert events[0][1].refund_id == rows[0].id
        assert events[0][1].settlement.gross.amount_minor == -6_000
        assert (await cp.get(paid.id)).amount_refunded.amount_minor == 6_000
