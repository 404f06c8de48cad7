"""Read-only queries behind a payment's timeline: its refunds, disputes, early fraud warnings
and the trace context its events were published with (kept in the outbox)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.disputes import Dispute
from ..domain.payment import Refund
from .cases import _dispute
from .tables import disputes, early_fraud_warnings, outbox, refunds

__all__ = ["EarlyFraudWarning", "EventTrace", "TimelineReader"]


@dataclass(frozen=True)
class EarlyFraudWarning:
    id: str
    fraud_type: str
    actionable: bool
    action: str
    created_at: float


@dataclass(frozen=True)
class EventTrace:
    event_id: str
    subject: str
    trace_id: str  # "" when the event carried no trace context
    at: float


def _trace_id(headers: Any) -> str:
    """The trace id of a W3C `traceparent` (version-traceid-spanid-flags)."""
    parts = str((headers or {}).get("traceparent", "")).split("-")
    if len(parts) == 4 and len(parts[1]) == 32 and parts[1] != "0" * 32:
        return parts[1]
    return ""


class TimelineReader:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def refunds(self, payment_id: str) -> list[Refund]:
        stmt = (
            select(refunds)
            .where(refunds.c.payment_id == payment_id)
            .order_by(refunds.c.created_at, refunds.c.id)
        )
        return [
            Refund(
                id=r.id,
                payment_id=r.payment_id,
                amount=r.amount,
                currency=r.currency,
                reason=r.reason,
                status=r.status,
                stripe_refund_id=r.stripe_refund_id or "",
                created_at=r.created_at.timestamp(),
            )
            for r in (await self.session.execute(stmt)).all()
        ]

    async def disputes(self, payment_id: str) -> list[Dispute]:
        stmt = (
            select(disputes)
            .where(disputes.c.payment_id == payment_id)
            .order_by(disputes.c.opened_at, disputes.c.id)
        )
        return [_dispute(r) for r in (await self.session.execute(stmt)).all()]

    async def early_fraud_warnings(self, payment_id: str) -> list[EarlyFraudWarning]:
        t = early_fraud_warnings.c
        stmt = select(early_fraud_warnings).where(t.payment_id == payment_id).order_by(t.created_at)
        return [
            EarlyFraudWarning(
                r.id, r.fraud_type, bool(r.actionable), r.action, r.created_at.timestamp()
            )
            for r in (await self.session.execute(stmt)).all()
        ]

    async def event_traces(self, event_ids: list[str]) -> list[EventTrace]:
        """The outbox rows of these events still kept (sent rows go after a day)."""
        if not event_ids:
            return []
        t = outbox.c
        stmt = (
            select(t.event_id, t.subject, t.headers, t.created_at)
            .where(t.event_id.in_(event_ids))
            .order_by(t.id)
        )
        return [
            EventTrace(r.event_id, r.subject, _trace_id(r.headers), r.created_at.timestamp())
            for r in (await self.session.execute(stmt)).all()
        ]
