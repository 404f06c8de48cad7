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

from ..domain.payment import Payment, Refund, Settlement

__all__ = ["SUBJECTS", "payment_failed", "payment_refunded", "payment_succeeded"]

SOURCE = "checkout"
SUBJECTS = {
    "payment.succeeded": "checkout.payment.succeeded",
    "payment.failed": "checkout.payment.failed",
    "payment.refunded": "checkout.payment.refunded",
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
