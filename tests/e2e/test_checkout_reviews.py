"""Human review: elevated risk and REVIEW decisions held, then approved or rejected by a
reviewer (with a reason, audited, as events); only the reviewer role decides."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from payplane.checkout.v1 import checkout_pb2, review_pb2
from payplane.common.v1 import common_pb2
from payplane.grpckit import idempotency_metadata
from stripe_emulator.testing import EmulatorHandle

from .checkout_platform import REVIEW_AT, CheckoutPlatform, running_checkout, until

S, R = checkout_pb2, review_pb2


@pytest.fixture
async def cp(emulator: EmulatorHandle, tmp_path: Path) -> AsyncIterator[CheckoutPlatform]:
    async with running_checkout(emulator, tmp_path) as p:
        yield p


async def _decide(
    cp: CheckoutPlatform, approve: bool, review_id: str, reason: str, caller: str = "reviewer"
) -> review_pb2.Review:
    stub = cp.reviews(caller)
    call = stub.ApproveReview if approve else stub.RejectReview
    result: review_pb2.Review = await call(
        R.DecideReviewRequest(review_id=review_id, reason=reason),
        metadata=idempotency_metadata(f"k-{review_id}-{approve}-{reason[:10]}"),
        timeout=30,
    )
    return result


async def test_elevated_risk_goes_to_review_then_approve(cp: CheckoutPlatform) -> None:
    p = await cp.pay("k-elev", pm="pm_card_riskLevelElevated", amount=3_000)
    assert p.status == S.PAYMENT_STATUS_SUCCEEDED  # Radar reviews; automatic capture went on
    assert p.fraud.decision == S.FRAUD_DECISION_ALLOW
    assert p.fraud.final_decision == S.FRAUD_DECISION_REVIEW
    assert p.radar.risk_level == "elevated" and p.review_id
    detail = await cp.review_of(p.id)
    assert detail.review.reason == "radar_elevated"
    assert detail.review.stripe_review_id.startswith("prv_")
    assert detail.payment.fraud.features and detail.payment.radar.risk_score == 72
    assert detail.customer_history.payments == 1 and detail.customer_history.succeeded == 1
    approved = await _decide(cp, True, p.review_id, "customer confirmed by phone")
    assert approved.status == R.REVIEW_STATUS_APPROVED and approved.decided_by == "reviewer"
    stripe_review = cp.emulator.stripe_client("sk_test_payplane_checkout_e2e").v1.reviews.retrieve(
        detail.review.stripe_review_id
    )
    assert stripe_review.closed_reason == "approved"
    after = await cp.get(p.id)
    assert after.status == S.PAYMENT_STATUS_SUCCEEDED and after.amount_refunded.amount_minor == 0
    events = await until(
        lambda: cp.published("checkout.review.>"), lambda e: len(e) == 2, timeout_s=10
    )
    assert [t for t, _ in events] == ["review.opened", "review.closed"]
    assert events[1][1].outcome == "approved" and events[1][1].reason.startswith("customer")


async def test_elevated_risk_rejected_is_refunded(cp: CheckoutPlatform) -> None:
    p = await cp.pay("k-elev-rej", pm="pm_card_riskLevelElevated", amount=3_000)
    rejected = await _decide(cp, False, p.review_id, "card testing pattern")
    assert rejected.status == R.REVIEW_STATUS_REJECTED
    after = await cp.get(p.id)
    assert after.amount_refunded.amount_minor == 3_000
    refunds = cp.emulator.stripe_client("sk_test_payplane_checkout_e2e").v1.refunds.list(
        params={"payment_intent": p.stripe_payment_intent_id}
    )
    assert [r.reason for r in refunds.data] == ["fraudulent"]
    detail = await cp.review_of(p.id)
    actions = [a.action for a in detail.audit]
    # Radar's own review closes when the refund lands; that may be audited before or after ours
    assert actions[0] == "opened" and actions.count("rejected") == 1
    assert set(actions) <= {"opened", "rejected", "radar_review_closed"}


async def test_a_review_decision_holds_the_authorisation_until_approved(
    cp: CheckoutPlatform,
) -> None:
    p = await cp.pay("k-held", amount=REVIEW_AT)
    assert p.fraud.decision == S.FRAUD_DECISION_REVIEW
    assert p.status == S.PAYMENT_STATUS_REQUIRES_CAPTURE  # manual capture: only authorised
    with pytest.raises(grpc.aio.AioRpcError) as err:  # the caller cannot capture around it
        await cp.checkout().CapturePayment(
            S.CapturePaymentRequest(payment_id=p.id), metadata=idempotency_metadata("k-sneak")
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    approved = await _decide(cp, True, p.review_id, "known customer")
    assert approved.status == R.REVIEW_STATUS_APPROVED
    after = await cp.get(p.id)
    assert after.status == S.PAYMENT_STATUS_SUCCEEDED
    assert after.amount_captured.amount_minor == REVIEW_AT


async def test_a_held_payment_rejected_is_canceled(cp: CheckoutPlatform) -> None:
    p = await cp.pay("k-held-rej", amount=REVIEW_AT)
    await _decide(cp, False, p.review_id, "mismatched shipping")
    after = await cp.get(p.id)
    assert after.status == S.PAYMENT_STATUS_CANCELED
    assert after.cancellation_reason == "fraudulent"


async def test_only_reviewers_decide_with_a_reason_once(cp: CheckoutPlatform) -> None:
    p = await cp.pay("k-perm", amount=REVIEW_AT)
    for caller in ("storefront", "admin", "support"):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _decide(cp, True, p.review_id, "i say so", caller=caller)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _decide(cp, True, p.review_id, "   ")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await _decide(cp, False, p.review_id, "stolen card report")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _decide(cp, True, p.review_id, "changed my mind")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_list_reviews_filters_and_pages(cp: CheckoutPlatform) -> None:
    held = [await cp.pay(f"k-list-{i}", amount=REVIEW_AT + i) for i in range(3)]
    elev = await cp.pay("k-list-elev", pm="pm_card_riskLevelElevated")
    await _decide(cp, False, held[0].review_id, "no")
    stub = cp.reviews()
    seen: list[str] = []
    token = ""
    while True:
        page = await stub.ListReviews(
            R.ListReviewsRequest(
                status=R.REVIEW_STATUS_OPEN,
                page=common_pb2.PageRequest(page_size=1, page_token=token),
            )
        )
        seen += [r.payment_id for r in page.reviews]
        token = page.page.next_page_token
        if not token:
            break
    assert seen == [held[1].id, held[2].id, elev.id]  # oldest first
    radar = await stub.ListReviews(R.ListReviewsRequest(reason="radar_elevated"))
    assert [r.payment_id for r in radar.reviews] == [elev.id]
    none_old = await stub.ListReviews(R.ListReviewsRequest(min_age_s=3_600))
    assert list(none_old.reviews) == []
