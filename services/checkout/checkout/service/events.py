"""The facts checkout publishes, as protobuf envelopes with deterministic event ids.

An event id is derived from the fact (`<payment>.succeeded`), so two paths that both see a
payment succeed (the synchronous answer and a webhook) cannot publish it twice.
"""

from __future__ import annotations

import time

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from payplane.checkout.v1 import events_pb2
from payplane.common.v1 import common_pb2
from payplane.events.v1 import envelope_pb2

from ..domain.disputes import Dispute
from ..domain.payment import Payment, Refund, Settlement
from ..domain.reviews import Review

__all__ = [
    "SUBJECTS",
    "dispute_updated",
    "payment_failed",
    "payment_refund_failed",
    "payment_refunded",
    "payment_succeeded",
    "review_closed",
    "review_opened",
]

SOURCE = "checkout"
SUBJECTS = {
    "payment.succeeded": "checkout.payment.succeeded",
    "payment.failed": "checkout.payment.failed",
    "payment.refunded": "checkout.payment.refunded",
    "payment.refund_failed": "checkout.payment.refund_failed",
    "dispute.opened": "checkout.dispute.opened",
    "dispute.funds_withdrawn": "checkout.dispute.funds_withdrawn",
    "dispute.funds_reinstated": "checkout.dispute.funds_reinstated",
    "dispute.closed": "checkout.dispute.closed",
    "review.opened": "checkout.review.opened",
    "review.closed": "checkout.review.closed",
}


def _money(amount: int, currency: str) -> common_pb2.Money:
    return common_pb2.Money(amount_minor=amount, currency=currency)


def _ts(seconds: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def _settlement(s: Settlement | None) -> events_pb2.Settlement | None:
    if s is None:
        return None
    return events_pb2.Settlement(
        balance_transaction_id=s.balance_transaction_id,
        gross=_money(s.gross, s.currency),
        fee=_money(s.fee, s.currency),
        net=_money(s.net, s.currency),
        exchange_rate=s.exchange_rate,
        available_on=_ts(s.available_on),
    )


def _envelope(
    event_id: str, type_: str, subject_id: str, payload: Message
) -> envelope_pb2.Envelope:
    return envelope_pb2.Envelope(
        event_id=event_id,
        type=type_,
        source=SOURCE,
        time=_ts(time.time()),
        subject_id=subject_id,
        payload_type=payload.DESCRIPTOR.full_name,
        payload=payload.SerializeToString(),
    )


def payment_succeeded(p: Payment, settlement: Settlement | None) -> envelope_pb2.Envelope:
    msg = events_pb2.PaymentSucceeded(
        payment_id=p.id,
        amount=_money(p.amount, p.currency),
        customer_ref=p.customer_ref,
        stripe_payment_intent_id=p.stripe_payment_intent_id,
        stripe_charge_id=p.stripe_charge_id,
        settlement=_settlement(settlement),
        succeeded_at=_ts(p.updated_at),
    )
    return _envelope(f"{p.id}.succeeded", "payment.succeeded", p.id, msg)


def payment_failed(p: Payment) -> envelope_pb2.Envelope:
    d = p.decline
    msg = events_pb2.PaymentFailed(
        payment_id=p.id,
        amount=_money(p.amount, p.currency),
        customer_ref=p.customer_ref,
        stripe_payment_intent_id=p.stripe_payment_intent_id,
        code=d.code if d else "",
        decline_code=d.decline_code if d else "",
        message=d.message if d else "",
    )
    return _envelope(f"{p.id}.failed", "payment.failed", p.id, msg)


def payment_refunded(p: Payment, r: Refund, settlement: Settlement | None) -> envelope_pb2.Envelope:
    msg = events_pb2.PaymentRefunded(
        payment_id=p.id,
        refund_id=r.id,
        amount=_money(r.amount, r.currency),
        stripe_refund_id=r.stripe_refund_id,
        stripe_charge_id=p.stripe_charge_id,
        settlement=_settlement(settlement),
        refunded_at=_ts(r.created_at),
    )
    return _envelope(f"{r.id}.refunded", "payment.refunded", p.id, msg)


def payment_refund_failed(
    p: Payment, r: Refund, settlement: Settlement | None, at: float
) -> envelope_pb2.Envelope:
    msg = events_pb2.PaymentRefundFailed(
        payment_id=p.id,
        refund_id=r.id,
        amount=_money(r.amount, r.currency),
        stripe_refund_id=r.stripe_refund_id,
        stripe_charge_id=p.stripe_charge_id,
        status=r.status,
        failure_reason=r.failure_reason,
        settlement=_settlement(settlement),
        failed_at=_ts(at),
    )
    return _envelope(f"{r.id}.refund_failed", "payment.refund_failed", p.id, msg)


def dispute_updated(
    d: Dispute, fact: str, settlement: Settlement | None, at: float
) -> envelope_pb2.Envelope:
    """`fact` is opened | funds_withdrawn | funds_reinstated | closed (one event each)."""
    msg = events_pb2.DisputeUpdated(
        dispute_id=d.id,
        payment_id=d.payment_id,
        stripe_charge_id=d.stripe_charge_id,
        amount=_money(d.amount, d.currency),
        reason=d.reason,
        status=d.status,
        settlement=_settlement(settlement),
        occurred_at=_ts(at),
    )
    return _envelope(f"{d.id}.{fact}", f"dispute.{fact}", d.payment_id or d.id, msg)


def review_opened(r: Review) -> envelope_pb2.Envelope:
    msg = events_pb2.ReviewOpened(
        review_id=r.id,
        payment_id=r.payment_id,
        reason=r.reason,
        score=r.score,
        opened_at=_ts(r.opened_at),
    )
    return _envelope(f"{r.id}.opened", "review.opened", r.payment_id, msg)


def review_closed(r: Review) -> envelope_pb2.Envelope:
    msg = events_pb2.ReviewClosed(
        review_id=r.id,
        payment_id=r.payment_id,
        outcome=r.status.value,
        decided_by=r.decided_by,
        reason=r.decision_reason,
        auto_resolved=r.auto_resolved,
        closed_at=_ts(r.closed_at or 0.0),
    )
    return _envelope(f"{r.id}.closed", "review.closed", r.payment_id, msg)
