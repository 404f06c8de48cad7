"""Loading and saving payments and refunds (inside the caller's transaction)."""

from __future__ import annotations

import base64
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.errors import InvalidPayment
from ..domain.payment import (
    REFUND_OPEN,
    CaptureMethod,
    Decline,
    NextAction,
    Payment,
    RadarOutcome,
    Refund,
    Status,
)
from .tables import payments, refunds

__all__ = ["ConcurrentUpdate", "PaymentRepository"]


class ConcurrentUpdate(Exception):
    """Another transaction saved the payment first: reload and apply again."""


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _opt_ts(value: float | None) -> datetime | None:
    return None if value is None else _ts(value)


def _opt_epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _row_to_payment(row: Any) -> Payment:
    return Payment(
        id=row.id,
        amount=row.amount,
        currency=row.currency,
        customer_ref=row.customer_ref,
        payment_method=row.payment_method,
        capture_method=CaptureMethod(row.capture_method),
        description=row.description,
        metadata=dict(row.metadata or {}),
        status=Status(row.status),
        amount_refunded=row.amount_refunded,
        stripe_payment_intent_id=row.stripe_payment_intent_id or "",
        stripe_charge_id=row.stripe_charge_id or "",
        next_action=NextAction(**row.next_action) if row.next_action else None,
        decline=Decline(**row.decline) if row.decline else None,
        created_at=row.created_at.timestamp(),
        updated_at=row.updated_at.timestamp(),
        version=row.version,
        amount_captured=row.amount_captured or 0,
        cancellation_reason=row.cancellation_reason or "",
        authorized_at=_opt_epoch(row.authorized_at),
        card_fingerprint=row.card_fingerprint or "",
        card_country=row.card_country or "",
        ip_address=row.ip_address or "",
        ip_country=row.ip_country or "",
        email=row.email or "",
        shipping_country=row.shipping_country or "",
        customer_created_at=_opt_epoch(row.customer_created_at),
        fraud_decision=row.fraud_decision or "",
        fraud_final_decision=row.fraud_final_decision or "",
        radar=RadarOutcome(**row.radar) if row.radar else None,
        review_id=row.review_id or "",
        confirm_later=bool(row.confirm_later),
        caller=row.caller,
    )


def _values(p: Payment) -> dict[str, Any]:
    return {
        "customer_ref": p.customer_ref,
        "amount": p.amount,
        "currency": p.currency,
        "amount_refunded": p.amount_refunded,
        "payment_method": p.payment_method,
        "capture_method": p.capture_method.value,
        "description": p.description,
        "metadata": p.metadata,
        "status": p.status.value,
        "stripe_payment_intent_id": p.stripe_payment_intent_id or None,
        "stripe_charge_id": p.stripe_charge_id or None,
        "next_action": asdict(p.next_action) if p.next_action else None,
        "decline": asdict(p.decline) if p.decline else None,
        "created_at": _ts(p.created_at),
        "updated_at": _ts(p.updated_at),
        "amount_captured": p.amount_captured,
        "cancellation_reason": p.cancellation_reason or None,
        "authorized_at": _opt_ts(p.authorized_at),
        "card_fingerprint": p.card_fingerprint or None,
        "card_country": p.card_country or None,
        "ip_address": p.ip_address or None,
        "ip_country": p.ip_country or None,
        "email": p.email or None,
        "shipping_country": p.shipping_country or None,
        "customer_created_at": _opt_ts(p.customer_created_at),
        "fraud_decision": p.fraud_decision or None,
        "fraud_final_decision": p.fraud_final_decision or None,
        "radar": asdict(p.radar) if p.radar else None,
        "radar_risk_score": p.radar.risk_score if p.radar else None,
        "radar_risk_level": (p.radar.risk_level or None) if p.radar else None,
        "review_id": p.review_id or None,
        "confirm_later": p.confirm_later,
    }


def encode_cursor(created_at: float, payment_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at!r}|{payment_id}".encode()).decode()


def decode_cursor(token: str) -> tuple[datetime, str]:
    try:
        created, payment_id = base64.urlsafe_b64decode(token.encode()).decode().split("|", 1)
        return _ts(float(created)), payment_id
    except (ValueError, UnicodeDecodeError):
        raise InvalidPayment("page.page_token: not a token this service issued") from None


class PaymentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, payment: Payment, caller: str, *, recheck_at: float | None = None) -> None:
        """Insert a payment; `recheck_at`: when the sweeper may look at it if still pending."""
        await self.session.execute(
            insert(payments).values(
                id=payment.id,
                caller=caller,
                version=0,
                recheck_at=_opt_ts(recheck_at),
                **_values(payment),
            )
        )

    async def get(self, payment_id: str, *, for_update: bool = False) -> Payment | None:
        stmt = select(payments).where(payments.c.id == payment_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = (await self.session.execute(stmt)).first()
        return _row_to_payment(row) if row else None

    async def get_by_intent(self, intent_id: str) -> Payment | None:
        stmt = select(payments).where(payments.c.stripe_payment_intent_id == intent_id)
        row = (await self.session.execute(stmt)).first()
        return _row_to_payment(row) if row else None

    async def save(self, payment: Payment) -> None:
        """Write the payment if nobody else did since it was read (optimistic lock)."""
        result = await self.session.execute(
            update(payments)
            .where(payments.c.id == payment.id, payments.c.version == payment.version)
            .values(version=payment.version + 1, **_values(payment))
        )
        if _rowcount(result) != 1:
            raise ConcurrentUpdate(payment.id)
        payment.version += 1

    async def page(
        self,
        *,
        customer_ref: str,
        status: Status | None,
        size: int,
        token: str,
        caller: str | None = None,
    ) -> tuple[list[Payment], str]:
        stmt = select(payments)
        if caller is not None:
            stmt = stmt.where(payments.c.caller == caller)
        if customer_ref:
            stmt = stmt.where(payments.c.customer_ref == customer_ref)
        if status is not None:
            stmt = stmt.where(payments.c.status == status.value)
        if token:
            created, last_id = decode_cursor(token)
            stmt = stmt.where(
                or_(
                    payments.c.created_at < created,
                    and_(payments.c.created_at == created, payments.c.id < last_id),
                )
            )
        stmt = stmt.order_by(payments.c.created_at.desc(), payments.c.id.desc()).limit(size + 1)
        rows = (await self.session.execute(stmt)).all()
        items = [_row_to_payment(r) for r in rows[:size]]
        more = len(rows) > size
        return items, encode_cursor(items[-1].created_at, items[-1].id) if more else ""

    async def authorised_before(self, cutoff: float, limit: int = 100) -> list[Payment]:
        """Uncaptured authorisations older than `cutoff` (Stripe's clock), oldest first."""
        stmt = (
            select(payments)
            .where(
                payments.c.status == Status.REQUIRES_CAPTURE.value,
                payments.c.authorized_at < _ts(cutoff),
            )
            .order_by(payments.c.authorized_at)
            .limit(limit)
        )
        return [_row_to_payment(r) for r in (await self.session.execute(stmt)).all()]

    async def get_by_charge(self, charge_id: str) -> Payment | None:
        stmt = select(payments).where(payments.c.stripe_charge_id == charge_id)
        row = (await self.session.execute(stmt)).first()
        return _row_to_payment(row) if row else None

    # -- the sweeper's claims ----------------------------------------------------------------
    async def pending_due(self, now: float, stale_before: float, limit: int = 100) -> list[Payment]:
        """Pending payments the sweeper may look at now, oldest first: their `recheck_at` has
        come, or they have none (written before 0003) and have not moved since `stale_before`.
        A payment waiting for its caller's ConfirmPayment is not stuck and is left alone."""
        stmt = (
            select(payments)
            .where(
                payments.c.status == Status.PENDING.value,
                _due(payments, now, payments.c.updated_at, stale_before),
                or_(
                    payments.c.confirm_later.is_(False),
                    payments.c.stripe_payment_intent_id.is_(None),
                ),
            )
            .order_by(payments.c.created_at)
            .limit(limit)
        )
        return [_row_to_payment(r) for r in (await self.session.execute(stmt)).all()]

    async def claim_pending(
        self, payment_id: str, now: float, stale_before: float, until: float
    ) -> bool:
        """Take a due pending payment for the sweep until `until`; one claimer wins."""
        result = await self.session.execute(
            update(payments)
            .where(
                payments.c.id == payment_id,
                payments.c.status == Status.PENDING.value,
                _due(payments, now, payments.c.updated_at, stale_before),
            )
            .values(recheck_at=_ts(until))
        )
        return _rowcount(result) == 1

    async def hold_for_stripe(self, payment_id: str, until: float) -> bool:
        """About to ask Stripe to create the payment's intent: keep the sweeper off it until
        `until` (whatever its claim). False when it is no longer waiting for an intent."""
        result = await self.session.execute(
            update(payments)
            .where(
                payments.c.id == payment_id,
                payments.c.status == Status.PENDING.value,
                payments.c.stripe_payment_intent_id.is_(None),
            )
            .values(recheck_at=_ts(until))
        )
        return _rowcount(result) == 1

    async def seize_unasked(self, payment_id: str, claimed_until: float) -> bool:
        """Lock in, for this transaction, that nobody asked Stripe for the payment's intent
        since the sweep claimed it (`claimed_until` is still there). A hold_for_stripe that
        comes later waits for this transaction and then finds the payment no longer pending.
        """
        result = await self.session.execute(
            update(payments)
            .where(
                payments.c.id == payment_id,
                payments.c.status == Status.PENDING.value,
                payments.c.stripe_payment_intent_id.is_(None),
                payments.c.recheck_at == _ts(claimed_until),
            )
            .values(recheck_at=None)
        )
        return _rowcount(result) == 1

    # -- refunds -------------------------------------------------------------------------------
    async def add_refund(self, refund: Refund, *, recheck_at: float | None = None) -> None:
        await self.session.execute(
            insert(refunds).values(
                id=refund.id,
                payment_id=refund.payment_id,
                amount=refund.amount,
                currency=refund.currency,
                reason=refund.reason,
                status=refund.status,
                stripe_refund_id=refund.stripe_refund_id or None,
                created_at=_ts(refund.created_at),
                recheck_at=_opt_ts(recheck_at),
                failure_reason=refund.failure_reason or None,
            )
        )

    async def get_refund(self, refund_id: str) -> Refund | None:
        row = (await self.session.execute(select(refunds).where(refunds.c.id == refund_id))).first()
        return _row_to_refund(row) if row else None

    async def get_refund_by_stripe(self, stripe_refund_id: str) -> Refund | None:
        stmt = select(refunds).where(refunds.c.stripe_refund_id == stripe_refund_id)
        row = (await self.session.execute(stmt)).first()
        return _row_to_refund(row) if row else None

    async def refunds_of(self, payment_id: str) -> list[Refund]:
        stmt = select(refunds).where(refunds.c.payment_id == payment_id).order_by(refunds.c.id)
        return [_row_to_refund(r) for r in (await self.session.execute(stmt)).all()]

    async def save_refund(self, refund: Refund) -> None:
        await self.session.execute(
            update(refunds)
            .where(refunds.c.id == refund.id)
            .values(
                status=refund.status,
                stripe_refund_id=refund.stripe_refund_id or None,
                failure_reason=refund.failure_reason or None,
            )
        )

    async def record_at_stripe(self, refund: Refund) -> bool:
        """First news that Stripe has the refund: store its id and status. False when an
        earlier news got there first (then nothing is written)."""
        result = await self.session.execute(
            update(refunds)
            .where(refunds.c.id == refund.id, refunds.c.stripe_refund_id.is_(None))
            .values(
                status=refund.status,
                stripe_refund_id=refund.stripe_refund_id,
                failure_reason=refund.failure_reason or None,
            )
        )
        return _rowcount(result) == 1

    async def move_refund(self, refund: Refund, from_status: str, *, untaken: bool = False) -> bool:
        """Change a refund's status if it still is `from_status` (one mover wins); with
        `untaken`, only while Stripe is not known to have it."""
        stmt = update(refunds).where(refunds.c.id == refund.id, refunds.c.status == from_status)
        if untaken:
            stmt = stmt.where(refunds.c.stripe_refund_id.is_(None))
        result = await self.session.execute(
            stmt.values(status=refund.status, failure_reason=refund.failure_reason or None)
        )
        return _rowcount(result) == 1

    async def refunds_due(self, now: float, stale_before: float, limit: int = 100) -> list[Refund]:
        """Refunds still open (reserved, or pending at Stripe) the sweeper may look at now."""
        stmt = (
            select(refunds)
            .where(
                refunds.c.status.in_(sorted(REFUND_OPEN)),
                _due(refunds, now, refunds.c.created_at, stale_before),
            )
            .order_by(refunds.c.created_at)
            .limit(limit)
        )
        return [_row_to_refund(r) for r in (await self.session.execute(stmt)).all()]

    async def claim_refund(
        self, refund_id: str, now: float, stale_before: float, until: float
    ) -> bool:
        result = await self.session.execute(
            update(refunds)
            .where(
                refunds.c.id == refund_id,
                refunds.c.status.in_(sorted(REFUND_OPEN)),
                _due(refunds, now, refunds.c.created_at, stale_before),
            )
            .values(recheck_at=_ts(until))
        )
        return _rowcount(result) == 1


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


def _due(table: Any, now: float, moved_at: Any, stale_before: float) -> ColumnElement[bool]:
    return or_(
        table.c.recheck_at <= _ts(now),
        and_(table.c.recheck_at.is_(None), moved_at <= _ts(stale_before)),
    )


def _row_to_refund(row: Any) -> Refund:
    return Refund(
        id=row.id,
        payment_id=row.payment_id,
        amount=row.amount,
        currency=row.currency,
        reason=row.reason,
        status=row.status,
        stripe_refund_id=row.stripe_refund_id or "",
        created_at=row.created_at.timestamp(),
        failure_reason=row.failure_reason or "",
    )
