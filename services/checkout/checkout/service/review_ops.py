"""Opening and closing reviews inside the caller's transaction (audit row + event each)."""

from __future__ import annotations

import secrets

from sqlalchemy.ext.asyncio import AsyncSession

from payplane.events import Outbox

from ..adapters.cases import CaseRepository
from ..domain.payment import Payment
from ..domain.reviews import SYSTEM, Review, ReviewStatus
from . import events

__all__ = ["close_review", "open_review"]


async def open_review(
    session: AsyncSession,
    outbox: Outbox,
    payment: Payment,
    reason: str,
    score: float,
    stripe_review_id: str,
    at: float,
) -> Review:
    """The payment's open review if it has one, else a new one.

    A decided (or closed) review is never reused: a payment held again after an approval, by
    an early fraud warning say, gets a review of its own for a reviewer to decide.
    """
    cases = CaseRepository(session)
    existing = await cases.review_for_payment(payment.id)
    if existing is not None and existing.status is ReviewStatus.OPEN:
        if stripe_review_id and not existing.stripe_review_id:
            existing.stripe_review_id = stripe_review_id
            await cases.save_review(existing)
        if reason != existing.reason:
            await cases.audit(existing.id, at, SYSTEM, "held_again", f"reason={reason}")
        return existing
    review = Review(
        id=f"rev_{secrets.token_hex(12)}",
        payment_id=payment.id,
        reason=reason,
        score=score,
        stripe_review_id=stripe_review_id,
        opened_at=at,
    )
    await cases.add_review(review)
    await cases.audit(review.id, at, SYSTEM, "opened", f"reason={reason} score={score:.4f}")
    await outbox.add(session, events.SUBJECTS["review.opened"], events.review_opened(review))
    return review


async def close_review(
    session: AsyncSession, outbox: Outbox, review: Review, action: str, actor: str
) -> None:
    """Save a review that was just decided or closed, with its audit row and event."""
    cases = CaseRepository(session)
    await cases.save_review(review)
    await cases.audit(review.id, review.closed_at or 0.0, actor, action, review.decision_reason)
    await outbox.add(session, events.SUBJECTS["review.closed"], events.review_closed(review))
