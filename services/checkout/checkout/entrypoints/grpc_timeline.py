"""A payment's timeline as protobuf (CheckoutService.GetPaymentTimeline)."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from payplane.checkout.v1 import checkout_pb2
from payplane.common.v1 import common_pb2

from ..adapters.fraud_store import StoredDecision
from ..service.timeline import Timeline
from .grpc_api import assessment_to_proto, payment_to_proto, refund_to_proto

__all__ = ["timeline_to_proto"]


def _ts(seconds: float | None) -> Timestamp | None:
    if seconds is None:
        return None
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def _decision(d: StoredDecision) -> checkout_pb2.FraudDecisionRecord:
    record = checkout_pb2.FraudDecisionRecord(
        mode=d.mode,
        stage=d.stage,
        assessment=assessment_to_proto(d),
        decided_at=_ts(d.decided_at),
    )
    if d.radar is not None:
        record.radar.CopyFrom(
            checkout_pb2.RadarOutcome(
                type=d.radar.type,
                risk_level=d.radar.risk_level,
                risk_score=d.radar.risk_score or 0,
                reason=d.radar.reason,
            )
        )
    return record


def timeline_to_proto(t: Timeline) -> checkout_pb2.PaymentTimeline:
    decisions = sorted([*t.live, *t.shadow], key=lambda d: d.decided_at)
    return checkout_pb2.PaymentTimeline(
        payment=payment_to_proto(t.payment, t.live),
        decisions=[_decision(d) for d in decisions],
        refunds=[refund_to_proto(r) for r in t.refunds],
        disputes=[
            checkout_pb2.DisputeRecord(
                id=d.id,
                amount=common_pb2.Money(amount_minor=d.amount, currency=d.currency),
                reason=d.reason,
                status=d.status,
                funds_withdrawn=d.funds_withdrawn,
                funds_reinstated=d.funds_reinstated,
                opened_at=_ts(d.opened_at),
                updated_at=_ts(d.updated_at),
                evidence_due_by=_ts(d.evidence_due_by),
            )
            for d in t.disputes
        ],
        early_fraud_warnings=[
            checkout_pb2.EarlyFraudWarningRecord(
                id=w.id,
                fraud_type=w.fraud_type,
                actionable=w.actionable,
                action=w.action,
                created_at=_ts(w.created_at),
            )
            for w in t.warnings
        ],
        events=[
            checkout_pb2.EventTrace(
                event_id=e.event_id, subject=e.subject, trace_id=e.trace_id, at=_ts(e.at)
            )
            for e in t.events
        ],
    )
