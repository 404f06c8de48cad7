"""The reads and audit details the operators' console builds on: a payment's timeline
(decisions, refunds, the trace of each event), a discrepancy with its audit trail, and the
acting person's name recorded beside the caller's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from payplane.checkout.v1 import checkout_pb2, review_pb2
from payplane.grpckit import idempotency_metadata, new_idempotency_key
from payplane.ledger.v1 import ledger_pb2
from stripe_emulator.testing import EmulatorHandle

from .checkout_platform import REVIEW_AT, CheckoutPlatform, running_checkout
from .harness import Platform
from .ledger_scenario import discrepancies, reconcile, wait_booked
from .test_ledger_injected import publish_paid

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture
async def cp(emulator: EmulatorHandle, tmp_path: Path) -> AsyncIterator[CheckoutPlatform]:
    async with running_checkout(emulator, tmp_path) as p:
        yield p


async def test_a_payments_timeline_holds_its_decisions_refunds_and_traces(
    cp: CheckoutPlatform,
) -> None:
    held = await cp.checkout().CreatePayment(
        checkout_pb2.CreatePaymentRequest(
            amount={"amount_minor": REVIEW_AT, "currency": "usd"},
            customer_ref="cust-timeline",
            payment_method="pm_card_visa",
        ),
        metadata=idempotency_metadata("k-timeline", [("traceparent", TRACEPARENT)]),
        timeout=30,
    )
    assert held.status == checkout_pb2.PAYMENT_STATUS_REQUIRES_CAPTURE
    approved = await cp.reviews("reviewer").ApproveReview(
        review_pb2.DecideReviewRequest(review_id=held.review_id, reason="known customer"),
        metadata=idempotency_metadata("k-timeline-approve", [("acting-user", "alice")]),
        timeout=30,
    )
    assert approved.decided_by == "reviewer:alice"
    await cp.checkout("support").RefundPayment(
        checkout_pb2.RefundPaymentRequest(payment_id=held.id, amount_minor=1_000),
        metadata=idempotency_metadata("k-timeline-refund"),
        timeout=30,
    )

    timeline = await cp.checkout("support").GetPaymentTimeline(
        checkout_pb2.GetPaymentRequest(payment_id=held.id), timeout=10
    )
    assert timeline.payment.id == held.id
    assert timeline.payment.status == checkout_pb2.PAYMENT_STATUS_SUCCEEDED
    live = [(d.mode, d.stage) for d in timeline.decisions if d.mode == "live"]
    assert live[0] == ("live", "pre_auth")
    assert timeline.decisions[0].assessment.decision == checkout_pb2.FRAUD_DECISION_REVIEW
    assert [r.amount.amount_minor for r in timeline.refunds] == [1_000]
    subjects = [e.subject for e in timeline.events]
    assert subjects[0] == "checkout.review.opened"
    assert {"checkout.payment.succeeded", "checkout.review.closed"} <= set(subjects)
    assert "checkout.payment.refunded" in subjects
    # The event published while the caller's trace was current carries that trace.
    assert timeline.events[0].trace_id == TRACE_ID
    assert all(len(e.trace_id) in (0, 32) for e in timeline.events)

    detail = await cp.reviews("reviewer").GetReview(
        review_pb2.GetReviewRequest(review_id=held.review_id), timeout=10
    )
    assert [(a.actor, a.action) for a in detail.audit][-1] == ("reviewer:alice", "approved")

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await cp.checkout("support").GetPaymentTimeline(
            checkout_pb2.GetPaymentRequest(payment_id="pay_nope"), timeout=10
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_discrepancy_comes_with_its_audit_trail_naming_the_person(
    platform: Platform,
) -> None:
    p = platform
    await publish_paid(p, "pay_phantom_audit", "txn_phantomaudit000000000", "usd", 1_234, 66)
    await wait_booked(p, ["pay_phantom_audit"])
    await reconcile(p)
    [found] = await discrepancies(p, kind="missing_in_stripe")
    ledger = p.ledger("admin")
    resolved = await ledger.ResolveDiscrepancy(
        ledger_pb2.ResolveDiscrepancyRequest(
            discrepancy_id=found.id, resolution="dismiss", reason="a test booking"
        ),
        metadata=idempotency_metadata(new_idempotency_key(), [("acting-user", "bob@example")]),
        timeout=10,
    )
    assert resolved.resolved_by == "admin:bob@example"

    detail = await p.ledger("finance").GetDiscrepancy(
        ledger_pb2.GetDiscrepancyRequest(discrepancy_id=found.id), timeout=10
    )
    assert detail.discrepancy.id == found.id and detail.discrepancy.status == "dismissed"
    assert [a.action for a in detail.audit] == ["found", "queued", "resolved"]
    assert detail.audit[0].actor == "reconciler"
    assert detail.audit[-1].actor == "admin:bob@example"
    assert "a test booking" in detail.audit[-1].detail["reason"]

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await ledger.GetDiscrepancy(
            ledger_pb2.GetDiscrepancyRequest(discrepancy_id="dsc_nope"), timeout=10
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_malformed_acting_user_is_not_recorded(cp: CheckoutPlatform) -> None:
    held = await cp.pay("k-bad-actor", amount=REVIEW_AT)
    rejected = await cp.reviews("reviewer").RejectReview(
        review_pb2.DecideReviewRequest(review_id=held.review_id, reason="stolen card"),
        metadata=idempotency_metadata("k-bad-actor-reject", [("acting-user", "eve <admin>")]),
        timeout=30,
    )
    assert rejected.decided_by == "reviewer"
