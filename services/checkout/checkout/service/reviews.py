"""The review desk: list and read held payments, approve (capture) or reject (cancel or
refund), each decision by a named reviewer with a reason, in the audit trail and as an
event. A review nobody decided before the authorisation lapses is resolved by the policy's
default and flagged (see expiry.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from payplane.stripe_gateway import GatewayError, deterministic_key

from ..adapters.cases import AuditRow, CaseRepository, CustomerStats
from ..adapters.fraud_store import DecisionStore, StoredDecision
from ..adapters.repository import PaymentRepository
from ..domain.errors import InvalidReview, ReviewNotAllowed, ReviewNotFound
from ..domain.payment import Payment, Status
from ..domain.reviews import SYSTEM, Review, ReviewStatus
from .handlers import Checkout
from .review_ops import close_review

__all__ = ["ReviewDesk", "ReviewView"]


@dataclass(frozen=True)
class ReviewView:
    review: Review
    payment: Payment
    decisions: list[StoredDecision]
    customer: CustomerStats
    audit: list[AuditRow]


class ReviewDesk:
    def __init__(self, checkout: Checkout) -> None:
        self.checkout = checkout
        self.sessions = checkout.sessions
        self.outbox = checkout.outbox
        self.clock = checkout.clock

    async def list_reviews(
        self,
        *,
        status: ReviewStatus | None,
        reason: str,
        min_age_s: int,
        max_age_s: int,
        page_size: int,
        page_token: str,
    ) -> tuple[list[Review], str]:
        if min_age_s < 0 or max_age_s < 0:
            raise InvalidReview("min_age_s, max_age_s: must not be negative")
        now = self.clock()
        size = min(max(page_size or 20, 1), 100)
        async with self.sessions() as session:
            return await CaseRepository(session).page_reviews(
                status=status,
                reason=reason,
                opened_before=now - min_age_s if min_age_s else None,
                opened_after=now - max_age_s if max_age_s else None,
                size=size,
                token=page_token,
            )

    async def get_review(self, review_id: str) -> ReviewView:
        async with self.sessions() as session:
            cases = CaseRepository(session)
            review = await cases.get_review(review_id)
            if review is None:
                raise ReviewNotFound(f"review {review_id} not found")
            payment = await PaymentRepository(session).get(review.payment_id)
            assert payment is not None
            decisions = await DecisionStore(session).for_payment(payment.id)
            customer = await cases.customer_stats(payment.customer_ref, payment.currency)
            audit = await cases.audit_trail(review.id)
        return ReviewView(review, payment, decisions, customer, audit)

    async def _open(self, review_id: str, reason: str) -> tuple[Review, Payment]:
        if not reason.strip():
            raise InvalidReview("reason: required (why the reviewer decided so)")
        async with self.sessions() as session:
            review = await CaseRepository(session).get_review(review_id)
        if review is None:
            raise ReviewNotFound(f"review {review_id} not found")
        if review.status is not ReviewStatus.OPEN:
            raise ReviewNotAllowed(f"review {review_id} is already {review.status.value}")
        return review, await self.checkout.get_payment(review.payment_id)

    async def approve(
        self, reviewer: str, review_id: str, reason: str, *, auto: bool = False, actor: str = ""
    ) -> Review:
        """`actor` (default: the reviewer) is who the audit trail names, e.g. "reviewer:alice"."""
        review, p = await self._open(review_id, reason)
        if p.status is Status.REQUIRES_CAPTURE and p.capture_method.value == "automatic":
            await self.checkout.capture_payment(
                reviewer, p.id, 0,
                key=deterministic_key("checkout", review.id, "approve_capture"), reviewed=True,
            )  # fmt: skip
        if review.stripe_review_id:
            try:
                await self.checkout.stripe.approve_review(
                    review.stripe_review_id,
                    deterministic_key("checkout", review.id, "approve_stripe_review"),
                )
            except GatewayError:
                pass  # Radar's review was closed already (refunded, disputed, approved)
        return await self._decide(review_id, True, actor or reviewer, reason, auto)

    async def reject(
        self, reviewer: str, review_id: str, reason: str, *, auto: bool = False, actor: str = ""
    ) -> Review:
        review, p = await self._open(review_id, reason)
        if p.status in (Status.REQUIRES_CAPTURE, Status.REQUIRES_ACTION, Status.PENDING):
            await self.checkout.cancel_payment(
                reviewer, p.id, "fraudulent",
                key=deterministic_key("checkout", review.id, "reject_cancel"),
                actor=actor or reviewer,
            )  # fmt: skip
        elif p.status is Status.SUCCEEDED and p.refundable:
            await self.checkout.refund_payment(
                reviewer, p.id, 0, "fraudulent", refund_id=f"ref_rev_{review.id[4:]}"
            )
        return await self._decide(review_id, False, actor or reviewer, reason, auto)

    async def _decide(
        self, review_id: str, approve: bool, reviewer: str, reason: str, auto: bool
    ) -> Review:
        async def decide(session: Any) -> Review:
            cases = CaseRepository(session)
            review = await cases.get_review(review_id)
            assert review is not None
            if review.status is not ReviewStatus.OPEN:
                return review  # a retry after the decision was committed
            review.decide(approve, reviewer, reason, self.clock(), auto=auto)
            action = ("auto_" if auto else "") + ("approved" if approve else "rejected")
            await close_review(session, self.outbox, review, action, reviewer)
            return review

        return await self.checkout._with_retry(decide)

    async def resolve_on_expiry(self, review: Review) -> Review:
        """Nobody decided before the hold lapses: apply the configured default, flagged."""
        why = "authorisation about to lapse: default applied"
        if self.checkout.policy.review_default_on_expiry == "approve":
            return await self.approve(SYSTEM, review.id, why, auto=True)
        return await self.reject(SYSTEM, review.id, why, auto=True)
