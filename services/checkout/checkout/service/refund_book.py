"""A refund's record moved by what Stripe says about it, inside the caller's transaction.

Every piece of news about a refund (Stripe's answer to checkout's own request, a webhook, the
sweeper's look) goes through `apply_refund`, and a refund only moves forward:

    reserved (pending, no Stripe id) ---Stripe has it---> Stripe's status
        publishes payment.refunded once (with the refund's balance transaction)
    pending | requires_action | succeeded ---Stripe failed or canceled it---> failed | canceled
        the amount is refundable again; publishes payment.refund_failed once (with the
        balance transaction that gave the funds back)
    a refund made at Stripe directly (not by checkout) is imported: counted against the
    payment and published like checkout's own.

Each move is a conditional UPDATE, so a webhook and the synchronous answer racing each other
publish each fact once. `release_refund` undoes a reservation Stripe refused (it never had it:
nothing was published).
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from payplane.events import Outbox

from ..adapters.repository import ConcurrentUpdate, PaymentRepository
from ..adapters.stripe_payments import RefundSnapshot
from ..domain.errors import PaymentNotFound
from ..domain.payment import REFUND_OPEN, REFUND_UNDONE, Payment, Refund
from . import events

__all__ = ["apply_refund", "imported_refund_id", "release_refund"]

log = logging.getLogger("checkout.refunds")

# Where a status sits on the way; news of a lower rank than the refund's is stale.
_RANK = {"pending": 0, "requires_action": 0, "succeeded": 1, "failed": 2, "canceled": 2}


def imported_refund_id(stripe_refund_id: str) -> str:
    """checkout's id for a refund made at Stripe directly (the same for every replica)."""
    return f"ref_{stripe_refund_id}"[:40]


async def apply_refund(
    session: AsyncSession,
    outbox: Outbox,
    snap: RefundSnapshot,
    payment_id: str,
    now: float,
    ours: str = "",
) -> tuple[Payment, Refund]:
    """Apply Stripe's view of a refund of `payment_id`; returns the payment and refund as
    they are now. `ours`: checkout's refund this is the answer for, when the caller knows
    (else the refund's metadata says). Raises ConcurrentUpdate when another writer moved
    them first (run it again).
    """
    repo = PaymentRepository(session)
    payment = await repo.get(payment_id)
    if payment is None:
        raise PaymentNotFound(f"payment {payment_id} not found")
    refund = await repo.get_refund_by_stripe(snap.refund_id)
    if refund is None and (ours or snap.payplane_refund_id):
        refund = await repo.get_refund(ours or snap.payplane_refund_id)
    if refund is None:
        return await _import(repo, outbox, session, payment, snap, now)
    if refund.stripe_refund_id and _RANK.get(snap.status, 0) <= _RANK.get(refund.status, 0):
        if snap.status != refund.status:
            log.info("refund %s: stale news (%s after %s)", refund.id, snap.status, refund.status)
        return payment, refund
    first_news = not refund.stripe_refund_id
    was = refund.status
    refund.status = snap.status
    refund.failure_reason = snap.failure_reason
    if first_news:
        refund.stripe_refund_id = snap.refund_id
        moved = await repo.record_at_stripe(refund)
    else:
        moved = await repo.move_refund(refund, was)
    if not moved:
        raise ConcurrentUpdate(refund.id)
    if first_news:
        await outbox.add(
            session,
            events.SUBJECTS["payment.refunded"],
            events.payment_refunded(payment, refund, snap.settlement),
        )
    if refund.status in REFUND_UNDONE and was not in REFUND_UNDONE:
        await _give_back(repo, outbox, session, payment, refund, snap, now)
    return payment, refund


async def _import(
    repo: PaymentRepository,
    outbox: Outbox,
    session: AsyncSession,
    payment: Payment,
    snap: RefundSnapshot,
    now: float,
) -> tuple[Payment, Refund]:
    """A refund checkout never made (the Dashboard, another integration): count it."""
    refund = Refund(
        id=imported_refund_id(snap.refund_id),
        payment_id=payment.id,
        amount=snap.amount,
        currency=snap.currency or payment.currency,
        reason=snap.reason[:32],
        status=snap.status,
        stripe_refund_id=snap.refund_id,
        created_at=snap.created or now,
        failure_reason=snap.failure_reason,
    )
    payment.amount_refunded += refund.amount
    payment.updated_at = now
    await repo.save(payment)
    await repo.add_refund(refund)  # a concurrent import of the same refund fails here
    await outbox.add(
        session,
        events.SUBJECTS["payment.refunded"],
        events.payment_refunded(payment, refund, snap.settlement),
    )
    log.info("imported refund %s of payment %s as %s", snap.refund_id, payment.id, refund.id)
    if refund.status in REFUND_UNDONE:
        await _give_back(repo, outbox, session, payment, refund, snap, now)
    return payment, refund


async def _give_back(
    repo: PaymentRepository,
    outbox: Outbox,
    session: AsyncSession,
    payment: Payment,
    refund: Refund,
    snap: RefundSnapshot,
    now: float,
) -> None:
    payment.amount_refunded = max(payment.amount_refunded - refund.amount, 0)
    payment.updated_at = now
    await repo.save(payment)
    await outbox.add(
        session,
        events.SUBJECTS["payment.refund_failed"],
        events.payment_refund_failed(payment, refund, snap.failure_settlement, now),
    )
    log.warning(
        "refund %s of payment %s %s at Stripe (%s): %d %s refundable again",
        refund.id, payment.id, refund.status, refund.failure_reason or "no reason given",
        refund.amount, refund.currency,
    )  # fmt: skip


async def release_refund(session: AsyncSession, refund_id: str, why: str, now: float) -> bool:
    """Undo a reservation Stripe never took (it refused the refund): the amount is
    refundable again. False when the refund is not an untaken reservation any more."""
    repo = PaymentRepository(session)
    refund = await repo.get_refund(refund_id)
    if refund is None or refund.stripe_refund_id or refund.status not in REFUND_OPEN:
        return False
    payment = await repo.get(refund.payment_id)
    assert payment is not None
    was = refund.status
    refund.status = "failed"
    refund.failure_reason = why[:64]
    if not await repo.move_refund(refund, was, untaken=True):
        raise ConcurrentUpdate(refund.id)
    payment.amount_refunded = max(payment.amount_refunded - refund.amount, 0)
    payment.updated_at = now
    await repo.save(payment)
    return True
