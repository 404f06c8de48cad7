"""An early fraud warning on a payment whose review was already decided is acted on by the
policy (efw_auto_refund_max): above the cap a new review opens, up to it the payment is
refunded. The decided review stays as it was."""

from __future__ import annotations

from pathlib import Path

from payplane.checkout.v1 import checkout_pb2, review_pb2
from payplane.grpckit import idempotency_metadata
from stripe_emulator.testing import EmulatorHandle

from .checkout_platform import REVIEW_AT, STRIPE_KEY, CheckoutPlatform, running_checkout, until

S, R = checkout_pb2, review_pb2


async def _held_then_approved(cp: CheckoutPlatform) -> tuple[checkout_pb2.Payment, str]:
    """A payment held for review (the review band), approved: captured, and then Stripe warns."""
    held = await cp.pay("k-held", pm="pm_card_createEarlyFraudWarning", amount=REVIEW_AT)
    assert held.status == S.PAYMENT_STATUS_REQUIRES_CAPTURE and held.review_id
    first_review = held.review_id
    await cp.reviews().ApproveReview(
        R.DecideReviewRequest(review_id=first_review, reason="customer confirmed by phone"),
        metadata=idempotency_metadata("k-approve"),
        timeout=30,
    )
    return held, first_review


async def test_a_warning_after_an_approved_review_opens_a_new_review(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async with running_checkout(emulator, tmp_path) as cp:
        held, first_review = await _held_then_approved(cp)
        # The capture sets off Stripe's early fraud warning; above the cap it needs a human.
        again = await until(lambda: cp.get(held.id), lambda p: p.review_id != first_review)
        assert again.status == S.PAYMENT_STATUS_SUCCEEDED
        assert again.amount_refunded.amount_minor == 0
        detail = await cp.review_of(held.id)
        assert detail.review.reason == "early_fraud_warning"
        assert detail.review.status == R.REVIEW_STATUS_OPEN
        first = await cp.reviews().GetReview(R.GetReviewRequest(review_id=first_review), timeout=10)
        assert first.review.status == R.REVIEW_STATUS_APPROVED
        opened = await until(
            lambda: cp.published("checkout.review.opened"), lambda e: len(e) == 2, timeout_s=10
        )
        assert [e.review_id for _, e in opened] == [first_review, again.review_id]
        # The new review is decided like any other: a rejection refunds the payment.
        await cp.reviews().RejectReview(
            R.DecideReviewRequest(review_id=again.review_id, reason="warning confirmed"),
            metadata=idempotency_metadata("k-reject"),
            timeout=30,
        )
        refunded = await until(
            lambda: cp.get(held.id), lambda p: p.amount_refunded.amount_minor == REVIEW_AT
        )
        assert refunded.review_id == again.review_id


async def test_a_warning_after_an_approved_review_below_the_cap_is_refunded(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async with running_checkout(emulator, tmp_path, efw_auto_refund_max_minor=REVIEW_AT) as cp:
        held, first_review = await _held_then_approved(cp)
        refunded = await until(
            lambda: cp.get(held.id), lambda p: p.amount_refunded.amount_minor == REVIEW_AT
        )
        assert refunded.review_id == first_review
        refunds = cp.emulator.stripe_client(STRIPE_KEY).v1.refunds.list(
            params={"payment_intent": held.stripe_payment_intent_id}
        )
        assert [(r.amount, r.reason) for r in refunds.data] == [(REVIEW_AT, "fraudulent")]
