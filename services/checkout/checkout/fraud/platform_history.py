"""checkout's own history as training data: its payments as transactions, in time order,
each with its outcome and its fraud label (labels.py) from the disputes, early fraud
warnings, reviews and refunds checkout recorded. Read-only.

Device id, shipping address and seller are not columns of checkout's payments yet: they are
taken from the payment's metadata (`device_id`, `shipping_address`, `seller`) when the
caller sent them there, and are unknown otherwise.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..adapters.tables import disputes, early_fraud_warnings, payments, refunds, reviews
from ..domain.declines import Advice, advice_for
from .facts import PaymentFacts
from .handbook import Transaction
from .labels import Label, Outcome, labels_from_outcomes

__all__ = ["load_outcomes", "load_transactions"]

_DONE = ("succeeded", "failed", "canceled")  # a payment still in flight has no outcome yet


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


async def load_outcomes(session: AsyncSession) -> list[Outcome]:
    out: list[Outcome] = []
    d = disputes.c
    for pid, reason, at in await session.execute(select(d.payment_id, d.reason, d.opened_at)):
        if pid:
            out.append(Outcome(pid, "dispute", reason, at.timestamp()))
    e = early_fraud_warnings.c
    efws = await session.execute(select(e.payment_id, e.fraud_type, e.created_at, e.id))
    for pid, fraud_type, at, efw_id in efws:
        if pid:
            out.append(Outcome(pid, "early_fraud_warning", fraud_type, at.timestamp(), efw_id))
    r = reviews.c
    closed = await session.execute(
        select(r.payment_id, r.status, r.closed_at, r.id, r.auto_resolved).where(
            r.closed_at.is_not(None)
        )
    )
    for pid, status, at, rid, auto in closed:
        out.append(Outcome(pid, "review", status, at.timestamp(), rid, bool(auto)))
    f = refunds.c
    refunded = await session.execute(
        select(f.payment_id, f.reason, f.created_at, f.id).where(f.status != "failed")
    )
    for pid, reason, at, ref in refunded:
        out.append(Outcome(pid, "refund", reason, at.timestamp(), ref))
    return out


def _transaction(row: Any, label: Label | None) -> Transaction:
    m = row._mapping
    meta = m["metadata"] if isinstance(m["metadata"], dict) else {}
    decline = m["decline"] if isinstance(m["decline"], dict) else None
    never = bool(
        decline
        and advice_for(str(decline.get("decline_code") or ""), str(decline.get("code") or ""))
        is Advice.NEVER
    )
    facts = PaymentFacts(
        payment_id=row.id,
        at=row.created_at.timestamp(),
        amount=int(row.amount),
        currency=row.currency,
        customer=row.customer_ref or "",
        card=row.card_fingerprint or "",
        email=row.email or "",
        ip=row.ip_address or "",
        device=str(meta.get("device_id") or ""),
        shipping=str(meta.get("shipping_address") or ""),
        seller=str(meta.get("seller") or ""),
        card_country=row.card_country or "",
        ip_country=row.ip_country or "",
        shipping_country=row.shipping_country or "",
        customer_created_at=_ts(row.customer_created_at),
    )
    return Transaction(
        facts=facts,
        fraud=1 if label is not None else 0,
        known_at=label.known_at if label is not None else None,
        succeeded=True if row.status == "succeeded" else False if row.status == "failed" else None,
        never_retry=never,
        radar_score=row.radar_risk_score,
        radar_level=row.radar_risk_level or "",
    )


async def load_transactions(session: AsyncSession) -> tuple[list[Transaction], dict[str, Label]]:
    """Every finished payment, oldest first, with the labels known today."""
    labels = labels_from_outcomes(await load_outcomes(session))
    p = payments.c
    rows = await session.execute(
        select(payments).where(p.status.in_(_DONE)).order_by(p.created_at, p.id)
    )
    return [_transaction(row, labels.get(row.id)) for row in rows], labels
