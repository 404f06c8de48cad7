"""Disputes and early fraud warnings from Stripe's events, and order tolerance: duplicate and
shuffled webhook streams end in the same state as the ordered stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from payplane.checkout.v1 import checkout_pb2, review_pb2
from stripe_emulator.testing import EmulatorHandle

from .checkout_platform import STRIPE_KEY, CheckoutPlatform, running_checkout, until

S = checkout_pb2


@pytest.fixture
async def cp(emulator: EmulatorHandle, tmp_path: Path) -> AsyncIterator[CheckoutPlatform]:
    async with running_checkout(emulator, tmp_path) as p:
        yield p


def _types(events: list[tuple[str, Any]]) -> list[str]:
    return [t for t, _ in events]


async def test_a_dispute_opened_then_lost(cp: CheckoutPlatform) -> None:
    p = await cp.pay("k-dispute", pm="pm_card_createDispute", amount=8_000)
    assert p.status == S.PAYMENT_STATUS_SUCCEEDED
    opened = await until(
        lambda: cp.published("checkout.dispute.>"),
        lambda e: {"dispute.opened", "dispute.funds_withdrawn"} <= set(_types(e)),
    )
    by_type = dict(opened)
    o = by_type["dispute.opened"]
    assert o.payment_id == p.id and o.stripe_charge_id == p.stripe_charge_id
    assert o.amount.amount_minor == 8_000 and o.reason == "fraudulent"
    assert o.status == "needs_response"
    w = by_type["dispute.funds_withdrawn"]
    assert w.settlement.balance_transaction_id.startswith("txn_")
    assert w.settlement.gross.amount_minor == -8_000  # the disputed amount leaves ...
    assert w.settlement.fee.amount_minor == 1_500  # ... with Stripe's dispute fee
    assert w.settlement.net.amount_minor == -9_500
    disputes = cp.emulator.stripe_client(STRIPE_KEY).v1.disputes.list(
        params={"payment_intent": p.stripe_payment_intent_id}
    )
    (dispute,) = disputes.data
    cp.emulator.control.call("POST", f"/_emulator/disputes/{dispute.id}/close", {"outcome": "lost"})
    final = await until(
        lambda: cp.published("checkout.dispute.>"), lambda e: "dispute.closed" in _types(e)
    )
    closed = dict(final)["dispute.closed"]
    assert closed.status == "lost" and closed.dispute_id == dispute.id
    assert "dispute.funds_reinstated" not in _types(final)
    assert sorted(_types(final)) == sorted(set(_types(final)))  # each fact once


async def test_an_early_fraud_warning_below_the_cap_is_refunded(cp: CheckoutPlatform) -> None:
    small = await cp.pay("k-efw", pm="pm_card_createEarlyFraudWarning", amount=5_000)
    refunded = await until(
        lambda: cp.get(small.id), lambda p: p.amount_refunded.amount_minor == 5_000
    )
    assert refunded.status == S.PAYMENT_STATUS_SUCCEEDED
    refunds = cp.emulator.stripe_client(STRIPE_KEY).v1.refunds.list(
        params={"payment_intent": small.stripe_payment_intent_id}
    )
    assert [(r.amount, r.reason) for r in refunds.data] == [(5_000, "fraudulent")]
    events = await until(lambda: cp.published("checkout.payment.refunded"), lambda e: len(e) == 1)
    assert events[0][1].amount.amount_minor == 5_000


async def test_an_early_fraud_warning_above_the_cap_opens_a_review(cp: CheckoutPlatform) -> None:
    big = await cp.pay("k-efw-big", pm="pm_card_createEarlyFraudWarning", amount=50_000)
    held = await until(lambda: cp.get(big.id), lambda p: bool(p.review_id))
    assert held.amount_refunded.amount_minor == 0
    detail = await cp.review_of(big.id)
    assert detail.review.reason == "early_fraud_warning"
    assert detail.review.status == review_pb2.REVIEW_STATUS_OPEN


async def _scenario(cp: CheckoutPlatform) -> dict[str, Any]:
    """Payments whose outcomes arrive through webhooks; returns the final state, id-free."""
    control = cp.emulator.control
    made = {
        "3ds_pass": await cp.pay("s-1", pm="pm_card_threeDSecure2Required", amount=1_100),
        "3ds_fail": await cp.pay("s-2", pm="pm_card_threeDSecure2Required", amount=1_200),
        "dispute": await cp.pay("s-3", pm="pm_card_createDispute", amount=1_300),
        "efw": await cp.pay("s-4", pm="pm_card_createEarlyFraudWarning", amount=1_400),
        "elevated": await cp.pay("s-5", pm="pm_card_riskLevelElevated", amount=1_500),
        "declined": await cp.pay("s-6", pm="pm_card_chargeDeclined", amount=1_600),
    }
    cp.three_d_secure(made["3ds_pass"], "pass")
    cp.three_d_secure(made["3ds_fail"], "fail")
    client = cp.emulator.stripe_client(STRIPE_KEY)

    async def dispute_events() -> list[str]:
        return _types(await cp.published("checkout.dispute.>"))

    await until(dispute_events, lambda e: "dispute.funds_withdrawn" in e)
    (dispute,) = client.v1.disputes.list(
        params={"payment_intent": made["dispute"].stripe_payment_intent_id}
    ).data
    control.call("POST", f"/_emulator/disputes/{dispute.id}/close", {"outcome": "won"})

    async def state() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, p in made.items():
            now = await cp.get(p.id)
            review = (await cp.review_of(p.id)).review if now.review_id else None
            out[name] = (
                now.status,
                now.amount_refunded.amount_minor,
                now.fraud.final_decision,
                None if review is None else (review.reason, review.status),
            )
        out["dispute_events"] = sorted(await dispute_events())
        return out

    def settled(s: dict[str, Any]) -> bool:
        return (
            s["3ds_pass"][0] == S.PAYMENT_STATUS_SUCCEEDED
            and s["3ds_fail"][0] == S.PAYMENT_STATUS_FAILED
            and s["efw"][1] == 1_400
            and "dispute.closed" in s["dispute_events"]
        )

    final: dict[str, Any] = await until(state, settled)
    # let any late duplicate land, then read again: nothing may move after settling
    again = await until(state, lambda s: s == final, timeout_s=5)
    return dict(again)


async def test_duplicate_and_shuffled_webhooks_end_where_the_ordered_stream_does(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async with running_checkout(emulator, tmp_path / "ordered") as ordered:
        want = await _scenario(ordered)
    async with running_checkout(emulator, tmp_path / "shuffled") as chaotic:
        chaotic.emulator.control.faults(webhook_duplicate_rate=1.0, webhook_shuffle=True)
        got = await _scenario(chaotic)
        deliveries = chaotic.webhook_deliveries()
    assert got == want
    assert want["dispute_events"] == sorted(
        ["dispute.opened", "dispute.funds_withdrawn", "dispute.funds_reinstated", "dispute.closed"]
    )
    assert want["elevated"][3] == ("radar_elevated", review_pb2.REVIEW_STATUS_OPEN)
    # the faults really happened: every event arrived twice
    assert any(d["duplicate"] for d in deliveries)
    assert len({d["event"] for d in deliveries}) < len(deliveries)
