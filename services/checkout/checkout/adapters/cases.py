"""Loading and saving reviews (with their audit trail), disputes and early fraud warnings."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.disputes import Dispute
from ..domain.errors import InvalidReview
from ..domain.reviews import Review, ReviewStatus
from .tables import disputes, early_fraud_warnings, payments, refunds, review_audit, reviews

__all__ = ["AuditRow", "CaseRepository", "CustomerStats"]


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


AuditRow = tuple[float, str, str, str]  # at, actor, action, detail
CustomerStats = dict[str, Any]


def _review(row: Any) -> Review:
    return Review(
        id=row.id,
        payment_id=row.payment_id,
        reason=row.reason,
        status=ReviewStatus(row.status),
        score=float(row.score or 0.0),
        stripe_review_id=row.stripe_review_id or "",
        opened_at=row.opened_at.timestamp(),
        closed_at=_epoch(row.closed_at),
        decided_by=row.decided_by or "",
        decision_reason=row.decision_reason or "",
        auto_resolved=bool(row.auto_resolved),
    )


def _review_values(r: Review) -> dict[str, Any]:
    return {
        "payment_id": r.payment_id,
        "reason": r.reason,
        "status": r.status.value,
        "score": r.score,
        "stripe_review_id": r.stripe_review_id or None,
        "opened_at": _ts(r.opened_at),
        "closed_at": None if r.closed_at is None else _ts(r.closed_at),
        "decided_by": r.decided_by or None,
        "decision_reason": r.decision_reason or None,
        "auto_resolved": r.auto_resolved,
    }


def _dispute(row: Any) -> Dispute:
    return Dispute(
        id=row.id,
        payment_id=row.payment_id or "",
        stripe_charge_id=row.stripe_charge_id,
        amount=row.amount,
        currency=row.currency,
        reason=row.reason,
        status=row.status,
        evidence_due_by=_epoch(row.evidence_due_by),
        funds_withdrawn=bool(row.funds_withdrawn),
        funds_reinstated=bool(row.funds_reinstated),
        opened_at=row.opened_at.timestamp(),
        updated_at=row.updated_at.timestamp(),
    )


def _dispute_values(d: Dispute) -> dict[str, Any]:
    return {
        "payment_id": d.payment_id or None,
        "stripe_charge_id": d.stripe_charge_id,
        "amount": d.amount,
        "currency": d.currency,
        "reason": d.reason,
        "status": d.status,
        "evidence_due_by": None if d.evidence_due_by is None else _ts(d.evidence_due_by),
        "funds_withdrawn": d.funds_withdrawn,
        "funds_reinstated": d.funds_reinstated,
        "opened_at": _ts(d.opened_at),
        "updated_at": _ts(d.updated_at),
    }


def encode_cursor(opened_at: float, review_id: str) -> str:
    return base64.urlsafe_b64encode(f"{opened_at!r}|{review_id}".encode()).decode()


def decode_cursor(token: str) -> tuple[datetime, str]:
    try:
        opened, rid = base64.urlsafe_b64decode(token.encode()).decode().split("|", 1)
        return _ts(float(opened)), rid
    except (ValueError, UnicodeDecodeError):
        raise InvalidReview("page.page_token: not a token this service issued") from None


class CaseRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- reviews ------------------------------------------------------------------------------
    async def add_review(self, r: Review) -> None:
        await self.session.execute(insert(reviews).values(id=r.id, **_review_values(r)))

    async def save_review(self, r: Review) -> None:
        await self.session.execute(
            update(reviews).where(reviews.c.id == r.id).values(**_review_values(r))
        )

    async def get_review(self, review_id: str) -> Review | None:
        row = (await self.session.execute(select(reviews).where(reviews.c.id == review_id))).first()
        return _review(row) if row else None

    async def review_for_payment(self, payment_id: str) -> Review | None:
        """The payment's latest review (a payment is held again after a decided one)."""
        stmt = (
            select(reviews)
            .where(reviews.c.payment_id == payment_id)
            .order_by(reviews.c.opened_at.desc(), reviews.c.id.desc())
            .limit(1)
        )
        row = (await self.session.execute(stmt)).first()
        return _review(row) if row else None

    async def page_reviews(
        self,
        *,
        status: ReviewStatus | None,
        reason: str,
        opened_after: float | None,
        opened_before: float | None,
        size: int,
        token: str,
    ) -> tuple[list[Review], str]:
        t = reviews.c
        stmt = select(reviews)
        if status is not None:
            stmt = stmt.where(t.status == status.value)
        if reason:
            stmt = stmt.where(t.reason == reason)
        if opened_after is not None:
            stmt = stmt.where(t.opened_at >= _ts(opened_after))
        if opened_before is not None:
            stmt = stmt.where(t.opened_at <= _ts(opened_before))
        if token:
            opened, last = decode_cursor(token)
            stmt = stmt.where(or_(t.opened_at > opened, and_(t.opened_at == opened, t.id > last)))
        stmt = stmt.order_by(t.opened_at, t.id).limit(size + 1)  # oldest first: a queue
        rows = (await self.session.execute(stmt)).all()
        items = [_review(r) for r in rows[:size]]
        more = len(rows) > size
        return items, encode_cursor(items[-1].opened_at, items[-1].id) if more else ""

    async def audit(self, review_id: str, at: float, actor: str, action: str, detail: str) -> None:
        await self.session.execute(
            insert(review_audit).values(
                review_id=review_id, at=_ts(at), actor=actor, action=action, detail=detail
            )
        )

    async def audit_trail(self, review_id: str) -> list[AuditRow]:
        stmt = (
            select(review_audit)
            .where(review_audit.c.review_id == review_id)
            .order_by(review_audit.c.id)
        )
        return [
            (r.at.timestamp(), r.actor, r.action, r.detail)
            for r in (await self.session.execute(stmt)).all()
        ]

    async def customer_stats(self, customer_ref: str, currency: str) -> CustomerStats:
        p = payments.c
        where = p.customer_ref == customer_ref
        total = select(func.count()).select_from(payments).where(where).scalar_subquery()
        ok = (
            select(func.count()).select_from(payments)
            .where(where, p.status == "succeeded").scalar_subquery()
        )  # fmt: skip
        failed = (
            select(func.count()).select_from(payments)
            .where(where, p.status == "failed").scalar_subquery()
        )  # fmt: skip
        ok_sum = (
            select(func.coalesce(func.sum(p.amount_captured), 0))
            .where(where, p.status == "succeeded", p.currency == currency)
            .scalar_subquery()
        )
        first = select(func.min(p.created_at)).where(where).scalar_subquery()
        ids = select(p.id).where(where)
        disputed = (
            select(func.count()).select_from(disputes)
            .where(disputes.c.payment_id.in_(ids)).scalar_subquery()
        )  # fmt: skip
        fraud_refunds = (
            select(func.count(func.distinct(refunds.c.payment_id)))
            .where(refunds.c.payment_id.in_(ids), refunds.c.reason == "fraudulent")
            .scalar_subquery()
        )
        row = (
            await self.session.execute(
                select(
                    total.label("total"), ok.label("ok"), failed.label("failed"),
                    ok_sum.label("ok_sum"), first.label("first"), disputed.label("disputed"),
                    fraud_refunds.label("fraud_refunds"),
                )
            )
        ).one()  # fmt: skip
        first_at = row.first
        if isinstance(first_at, str):  # SQLite returns min() of a datetime column as text
            first_at = datetime.fromisoformat(first_at).replace(tzinfo=UTC)
        return {
            "payments": int(row.total or 0),
            "succeeded": int(row.ok or 0),
            "failed": int(row.failed or 0),
            "succeeded_amount": int(row.ok_sum or 0),
            "first_payment_at": first_at.timestamp() if first_at else None,
            "disputed": int(row.disputed or 0),
            "refunded_as_fraud": int(row.fraud_refunds or 0),
        }

    # -- disputes -----------------------------------------------------------------------------
    async def get_dispute(self, dispute_id: str) -> Dispute | None:
        stmt = select(disputes).where(disputes.c.id == dispute_id)
        row = (await self.session.execute(stmt)).first()
        return _dispute(row) if row else None

    async def add_dispute(self, d: Dispute) -> None:
        await self.session.execute(insert(disputes).values(id=d.id, **_dispute_values(d)))

    async def save_dispute(self, d: Dispute) -> None:
        await self.session.execute(
            update(disputes).where(disputes.c.id == d.id).values(**_dispute_values(d))
        )

    # -- early fraud warnings -----------------------------------------------------------------
    async def efw_seen(self, efw_id: str) -> bool:
        stmt = select(early_fraud_warnings.c.id).where(early_fraud_warnings.c.id == efw_id)
        return (await self.session.execute(stmt)).first() is not None

    async def add_efw(
        self,
        efw_id: str,
        payment_id: str,
        charge_id: str,
        fraud_type: str,
        actionable: bool,
        action: str,
        at: float,
    ) -> None:
        await self.session.execute(
            insert(early_fraud_warnings).values(
                id=efw_id, payment_id=payment_id or None, stripe_charge_id=charge_id,
                fraud_type=fraud_type, actionable=actionable, action=action, created_at=_ts(at),
            )
        )  # fmt: skip
