"""A refund Stripe fails after accepting it: checkout hears it from Stripe's webhooks and
makes the amount refundable again, the ledger books the funds Stripe returned (reversing the
refund, its FX result included), and reconciliation finds the books tied out with Stripe."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from payplane.checkout.v1 import checkout_pb2
from payplane.ledger.v1 import ledger_pb2

from .harness import Platform, eventually
from .ledger_scenario import STANDARD_PRICING, START_RATES, pay, reconcile, refund, wait_booked


async def _refunded(p: Platform, payment_id: str) -> int:
    got = await p.checkout().GetPayment(
        checkout_pb2.GetPaymentRequest(payment_id=payment_id), timeout=10
    )
    return int(got.amount_refunded.amount_minor)


def refunded_of(p: Platform, payment_id: str) -> Callable[[], Awaitable[int]]:
    return lambda: _refunded(p, payment_id)


async def test_a_refund_stripe_fails_is_refundable_again_and_the_books_tie_out(
    platform_on: Platform,
) -> None:
    p = platform_on
    ctl = p.emulator.control
    ctl.configure(fx_rates=START_RATES, pricing=STANDARD_PRICING)
    usd = await pay(p, "rf-usd", 10_000, "usd", "pm_card_visa")
    eur = await pay(p, "rf-eur", 5_000, "eur", "pm_card_visa")  # converted into usd
    ctl.configure(fx_rates={"eur": 0.80})  # the refunds settle at a later rate
    partial = await refund(p, usd.id, 4_000)
    full = await refund(p, eur.id, 5_000)
    await wait_booked(p, {usd.id: 2, eur.id: 2})
    assert await p.balance("refunds") > 0 and await p.balance("fx_gain_loss") != 0

    # The card network refuses both refunds; Stripe gives the funds back.
    for failing in (partial, full):
        ctl.call(
            "POST",
            f"/_emulator/refunds/{failing.stripe_refund_id}/fail",
            {"failure_reason": "expired_or_canceled_card"},
        )
    for paid_id in (usd.id, eur.id):
        await eventually(refunded_of(p, paid_id), lambda v: v == 0)
    await wait_booked(p, {usd.id: 3, eur.id: 3})

    # The books: each failure booked once, with the transaction that returned the funds, and
    # the refunds and their FX result undone.
    for failing in (partial, full):
        stripe_refund = p.stripe.v1.refunds.retrieve(failing.stripe_refund_id)
        assert stripe_refund.status == "failed"
        entries = await p.ledger().ListEntries(
            ledger_pb2.ListEntriesRequest(source_id=failing.payment_id), timeout=10
        )
        booked = [e for e in entries.entries if e.source_type == "checkout.payment.refund_failed"]
        assert len(booked) == 1
        assert booked[0].refs["balance_transaction"] == stripe_refund.failure_balance_transaction
        assert booked[0].refs["failure_reason"] == "expired_or_canceled_card"
    assert await p.balance("refunds") == 0 and await p.balance("fx_gain_loss") == 0

    run = await reconcile(p)
    assert run.discrepancies_found == 0, [(k.kind, k.found) for k in run.kinds]
    assert run.balance_transactions_matched == run.balance_transactions_imported
    assert run.tie_out[0].ties_out, run.tie_out[0]

    # Refundable again, in full, and the new refund is booked and ties out too.
    again = await refund(p, usd.id, 10_000)
    assert again.status == "succeeded"
    assert await _refunded(p, usd.id) == 10_000
    await wait_booked(p, {usd.id: 4})
    after = await reconcile(p)
    assert after.discrepancies_found == 0 and after.tie_out[0].ties_out, after.tie_out[0]
    assert await p.ledger_app.ledger.verify() == []
