"""A payment's timeline for operators: everything checkout recorded about it, read in one
transaction so the parts agree with each other."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..adapters.fraud_store import DecisionStore, StoredDecision
from ..adapters.repository import PaymentRepository
from ..adapters.timeline import EarlyFraudWarning, EventTrace, TimelineReader
from ..domain.disputes import Dispute
from ..domain.errors import PaymentNotFound
from ..domain.payment import Payment, Refund

__all__ = ["Timeline", "payment_timeline"]

_DISPUTE_FACTS = ("opened", "funds_withdrawn", "funds_reinstated", "closed")


@dataclass(frozen=True)
class Timeline:
    payment: Payment
    live: list[StoredDecision]
    shadow: list[StoredDecision]
    refunds: list[Refund]
    disputes: list[Dispute]
    warnings: list[EarlyFraudWarning]
    events: list[EventTrace]


def _event_ids(p: Payment, refunds: list[Refund], disputes: list[Dispute]) -> list[str]:
    """The ids of every event checkout may have published about `p` (see service/events.py:
    ids are derived from the fact)."""
    ids = [f"{p.id}.succeeded", f"{p.id}.failed"]
    if p.review_id:
        ids += [f"{p.review_id}.opened", f"{p.review_id}.closed"]
    ids += [f"{r.id}.refunded" for r in refunds]
    ids += [f"{d.id}.{fact}" for d in disputes for fact in _DISPUTE_FACTS]
    return ids


async def payment_timeline(sessions: async_sessionmaker[AsyncSession], payment_id: str) -> Timeline:
    async with sessions() as session:
        payment = await PaymentRepository(session).get(payment_id)
        if payment is None:
            raise PaymentNotFound(f"payment {payment_id} not found")
        decisions = DecisionStore(session)
        reader = TimelineReader(session)
        refunds = await reader.refunds(payment_id)
        disputes = await reader.disputes(payment_id)
        return Timeline(
            payment=payment,
            live=await decisions.for_payment(payment_id, "live"),
            shadow=await decisions.for_payment(payment_id, "shadow"),
            refunds=refunds,
            disputes=disputes,
            warnings=await reader.early_fraud_warnings(payment_id),
            events=await reader.event_traces(_event_ids(payment, refunds, disputes)),
        )
