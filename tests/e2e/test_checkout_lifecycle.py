"""checkout's payment lifecycle against the emulator's test cards, over real gRPC and NATS:
success, each decline category, 3DS passed and failed, challenge, block, Radar block,
partial capture, cancel, confirm later, over-refund refused, authorisation expiry."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from payplane.checkout.v1 import checkout_pb2, review_pb2
from payplane.db.testing import TestDatabase
from payplane.grpckit import idempotency_metadata
from stripe_emulator.testing import EmulatorHandle

from .checkout_platform import (
    BLOCKED_EMAIL,
    CHALLENGE_AT,
    REVIEW_AT,
    CheckoutPlatform,
    running_checkout,
    until,
)

S = checkout_pb2


@pytest.fixture
async def cp(emulator: EmulatorHandle, tmp_path: Path) -> AsyncIterator[CheckoutPlatform]:
    async with running_checkout(emulator, tmp_path) as p:
        yield p


@pytest.fixture
async def cp_on(
    emulator: EmulatorHandle, tmp_path: Path, db_url: TestDatabase
) -> AsyncIterator[CheckoutPlatform]:
    async with running_checkout(emulator, tmp_path, db_url) as p:
        yield p


def _features(p: checkout_pb2.Payment) -> dict[str, float]:
    return {f.name: f.value for f in p.fraud.features}


async def test_success_is_allowed_with_a_stored_explanation(cp_on: CheckoutPlatform) -> None:
    paid = await cp_on.pay("k-ok", amount=4_200, email="a@example.com", ip_address="10.1.1.1")
    assert paid.status == S.PAYMENT_STATUS_SUCCEEDED
    assert paid.amount_captured.amount_minor == 4_200
    f = paid.fraud
    assert f.decision == S.FRAUD_DECISION_ALLOW and f.final_decision == S.FRAUD_DECISION_ALLOW
    assert f.model_version == "e2e-model-1"
    logit = f.bias + math.fsum(c.contribution for c in f.features)
    assert 1 / (1 + math.exp(-logit)) == pytest.approx(f.score, rel=1e-12)
    assert _features(paid)["first_purchase"] == 1.0
    assert paid.radar.type == "authorized" and paid.radar.risk_level == "normal"
    again = await cp_on.pay("k-ok-2", amount=4_200, email="a@example.com", ip_address="10.1.1.1")
    seen = _features(again)
    assert seen["first_purchase"] == 0.0
    assert seen["velocity_customer_10m"] == seen["velocity_email_10m"] == 1.0
    assert seen["velocity_ip_1h"] == seen["velocity_card_24h"] == 1.0
    assert seen["radar_max_risk_score_prev"] == paid.radar.risk_score / 100


async def test_each_decline_category_with_advice_feeds_the_history(cp: CheckoutPlatform) -> None:
    cases = [
        ("pm_card_chargeDeclinedProcessingError", S.RETRY_ADVICE_RETRY_LATER),
        ("pm_card_chargeDeclinedInsufficientFunds", S.RETRY_ADVICE_MAYBE_LATER),
        ("pm_card_chargeDeclinedExpiredCard", S.RETRY_ADVICE_CUSTOMER_ACTION),
        ("pm_card_chargeDeclinedStolenCard", S.RETRY_ADVICE_NEVER),
    ]
    for i, (pm, advice) in enumerate(cases):
        failed = await cp.pay(f"k-dec-{i}", pm=pm, customer_ref="cust-dec")
        assert failed.status == S.PAYMENT_STATUS_FAILED, pm
        assert failed.decline.advice == advice, pm
    after = await cp.pay("k-dec-ok", customer_ref="cust-dec")
    assert after.status == S.PAYMENT_STATUS_SUCCEEDED
    assert _features(after)["declines_customer_24h"] == 4.0
    # the same stolen card again: its never-retry decline is in the card's history
    again = await cp.pay(
        "k-dec-stolen-2", pm="pm_card_chargeDeclinedStolenCard", customer_ref="cust-other"
    )
    assert _features(again)["never_retry_declines_card_30d"] == 1.0
    assert _features(again)["declines_card_24h"] == 1.0
    assert _features(again)["distinct_customers_per_card"] == 1.0


async def test_3ds_passed_and_failed_complete_through_webhooks(cp: CheckoutPlatform) -> None:
    ok = await cp.pay("k-3ds-ok", pm="pm_card_threeDSecure2Required")
    bad = await cp.pay("k-3ds-bad", pm="pm_card_threeDSecure2Required")
    for p in (ok, bad):
        assert p.status == S.PAYMENT_STATUS_REQUIRES_ACTION
        assert p.next_action.type and p.next_action.client_secret
    cp.three_d_secure(ok, "pass")
    cp.three_d_secure(bad, "fail")
    done = await until(lambda: cp.get(ok.id), lambda p: p.status == S.PAYMENT_STATUS_SUCCEEDED)
    assert done.amount_captured.amount_minor == ok.amount.amount_minor
    failed = await until(lambda: cp.get(bad.id), lambda p: p.status == S.PAYMENT_STATUS_FAILED)
    assert failed.decline.code == "payment_intent_authentication_failure"


async def test_a_challenge_decision_requests_3ds(cp: CheckoutPlatform) -> None:
    p = await cp.pay("k-challenge", amount=CHALLENGE_AT)
    assert p.fraud.decision == S.FRAUD_DECISION_CHALLENGE
    assert "limit:challenge_band" in p.fraud.rules_fired
    assert p.status == S.PAYMENT_STATUS_REQUIRES_ACTION  # pm_card_visa alone would not need it
    intent = cp.emulator.stripe_client("sk_test_payplane_checkout_e2e").v1.payment_intents.retrieve(
        p.stripe_payment_intent_id
    )
    assert intent.payment_method_options.card.request_three_d_secure == "challenge"
    cp.three_d_secure(p, "pass")
    await until(lambda: cp.get(p.id), lambda x: x.status == S.PAYMENT_STATUS_SUCCEEDED)


async def test_a_block_decision_never_reaches_stripe(cp: CheckoutPlatform) -> None:
    blocked = await cp.pay("k-block", email=BLOCKED_EMAIL.upper())
    assert blocked.status == S.PAYMENT_STATUS_FAILED
    assert blocked.fraud.decision == S.FRAUD_DECISION_BLOCK
    assert list(blocked.fraud.rules_fired) == ["block_list:email"]
    assert blocked.decline.code == "blocked_by_fraud_rules"
    assert blocked.decline.advice == S.RETRY_ADVICE_NEVER
    assert not blocked.stripe_payment_intent_id
    creates = cp.emulator.control.requests(method="POST", path="/v1/payment_intents")
    assert creates == []


async def test_a_radar_block_is_respected(cp: CheckoutPlatform) -> None:
    p = await cp.pay("k-radar-block", pm="pm_card_radarBlock")
    assert p.status == S.PAYMENT_STATUS_FAILED
    assert p.radar.type == "blocked" and p.radar.risk_level == "highest"
    assert p.decline.advice == S.RETRY_ADVICE_NEVER
    nxt = await cp.pay("k-radar-after", customer_ref="cust-1")
    assert _features(nxt)["radar_elevated_prev"] == 1.0  # Radar's verdict feeds later decisions


async def test_partial_capture_then_over_refund_is_refused(cp: CheckoutPlatform) -> None:
    held = await cp.pay("k-manual", amount=10_000, capture_method=S.CAPTURE_METHOD_MANUAL)
    assert held.status == S.PAYMENT_STATUS_REQUIRES_CAPTURE
    stub = cp.checkout()
    captured = await stub.CapturePayment(
        S.CapturePaymentRequest(payment_id=held.id, amount_minor=6_000),
        metadata=idempotency_metadata("k-cap"),
    )
    assert captured.status == S.PAYMENT_STATUS_SUCCEEDED
    assert captured.amount_captured.amount_minor == 6_000
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.RefundPayment(
            S.RefundPaymentRequest(payment_id=held.id, amount_minor=7_000),
            metadata=idempotency_metadata("k-ref-too-much"),
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert cp.emulator.control.requests(method="POST", path="/v1/refunds") == []
    rest = await stub.RefundPayment(
        S.RefundPaymentRequest(payment_id=held.id, reason="requested_by_customer"),
        metadata=idempotency_metadata("k-ref-rest"),
    )
    assert rest.amount.amount_minor == 6_000
    with pytest.raises(grpc.aio.AioRpcError) as err:  # captured already: nothing to capture
        await stub.CapturePayment(
            S.CapturePaymentRequest(payment_id=held.id), metadata=idempotency_metadata("k-cap2")
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_cancel_with_a_reason(cp: CheckoutPlatform) -> None:
    held = await cp.pay("k-cancel", capture_method=S.CAPTURE_METHOD_MANUAL)
    stub = cp.checkout()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CancelPayment(
            S.CancelPaymentRequest(payment_id=held.id, reason="because"),
            metadata=idempotency_metadata("k-cancel-bad"),
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    canceled = await stub.CancelPayment(
        S.CancelPaymentRequest(payment_id=held.id, reason="requested_by_customer"),
        metadata=idempotency_metadata("k-cancel-1"),
    )
    assert canceled.status == S.PAYMENT_STATUS_CANCELED
    assert canceled.cancellation_reason == "requested_by_customer"
    intent = cp.emulator.stripe_client("sk_test_payplane_checkout_e2e").v1.payment_intents.retrieve(
        held.stripe_payment_intent_id
    )
    assert intent.status == "canceled"


async def test_confirm_later(cp: CheckoutPlatform) -> None:
    draft = await cp.pay("k-draft", confirm_later=True)
    assert draft.status == S.PAYMENT_STATUS_PENDING
    assert draft.fraud.decision == S.FRAUD_DECISION_UNSPECIFIED  # not decided yet
    confirmed = await cp.checkout().ConfirmPayment(
        S.ConfirmPaymentRequest(payment_id=draft.id), metadata=idempotency_metadata("k-conf")
    )
    assert confirmed.status == S.PAYMENT_STATUS_SUCCEEDED
    assert confirmed.fraud.decision == S.FRAUD_DECISION_ALLOW
    assert confirmed.stripe_payment_intent_id == draft.stripe_payment_intent_id


async def test_authorisation_expiry_cancels_before_the_hold_lapses(cp: CheckoutPlatform) -> None:
    plain = await cp.pay("k-exp", capture_method=S.CAPTURE_METHOD_MANUAL)
    held = await cp.pay("k-exp-review", amount=REVIEW_AT)
    assert plain.status == held.status == S.PAYMENT_STATUS_REQUIRES_CAPTURE
    assert held.review_id
    cp.emulator.control.advance(days=5)
    # five days in: nothing happens (the sweep runs every 0.2 s; give it several rounds)
    fresh = await cp.get(plain.id)
    assert fresh.status == S.PAYMENT_STATUS_REQUIRES_CAPTURE
    cp.emulator.control.advance(days=1.5)  # 6.5 days: before Stripe's 7-day lapse
    expired = await until(lambda: cp.get(plain.id), lambda p: p.status == S.PAYMENT_STATUS_CANCELED)
    assert expired.cancellation_reason == "abandoned"
    rejected = await until(lambda: cp.get(held.id), lambda p: p.status == S.PAYMENT_STATUS_CANCELED)
    assert rejected.cancellation_reason == "fraudulent"
    detail = await cp.review_of(held.id)
    assert detail.review.status == review_pb2.REVIEW_STATUS_REJECTED
    assert detail.review.auto_resolved and detail.review.decided_by == "system"
    assert [a.action for a in detail.audit] == ["opened", "auto_rejected"]
    # Stripe's own expiry (7 days) never had to act
    intent = cp.emulator.stripe_client("sk_test_payplane_checkout_e2e").v1.payment_intents.retrieve(
        plain.stripe_payment_intent_id
    )
    assert intent.cancellation_reason == "abandoned"


async def test_an_intent_checkout_never_saw_is_fetched_not_ignored(cp: CheckoutPlatform) -> None:
    client = cp.emulator.stripe_client("sk_test_payplane_checkout_e2e")
    intent = client.v1.payment_intents.create(
        params={
            "amount": 3_100,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
            "payment_method_types": ["card"],
            "metadata": {"payplane_customer_ref": "cust-dashboard"},
        }
    )

    async def find() -> list[checkout_pb2.Payment]:
        # Made outside payplane, it belongs to no caller: admin sees every caller's payments.
        page = await cp.checkout("admin").ListPayments(
            S.ListPaymentsRequest(customer_ref="cust-dashboard")
        )
        return list(page.payments)

    found = await until(
        find, lambda ps: len(ps) == 1 and ps[0].status == S.PAYMENT_STATUS_SUCCEEDED
    )
    assert found[0].stripe_payment_intent_id == intent.id
    assert found[0].amount.amount_minor == 3_100
