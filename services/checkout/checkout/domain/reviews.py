"""The human review of a held payment. Pure.

open -> approved | rejected (a reviewer, with a reason) | closed (Stripe closed the matter:
the charge was refunded or disputed elsewhere). A decision is final; deciding twice is refused.
A review nobody decided before the authorisation lapses is resolved by the configured
default and flagged `auto_resolved`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .errors import InvalidReview, ReviewNotAllowed

__all__ = ["Review", "ReviewReason", "ReviewStatus"]

SYSTEM = "system"


class ReviewStatus(StrEnum):
    OPEN = "open"
    APPROVED = "approved"
    REJECTED = "rejected"
    CLOSED = "closed"


class ReviewReason(StrEnum):
    FRAUD_SCORE = "fraud_score"  # the score (or a hard limit) said REVIEW
    RADAR_ELEVATED = "radar_elevated"  # Radar rated the authorisation elevated
    EARLY_FRAUD_WARNING = "early_fraud_warning"  # an actionable warning above the auto-refund cap


@dataclass
class Review:
    id: str
    payment_id: str
    reason: str
    status: ReviewStatus = ReviewStatus.OPEN
    score: float = 0.0
    stripe_review_id: str = ""
    opened_at: float = 0.0
    closed_at: float | None = None
    decided_by: str = ""
    decision_reason: str = ""
    auto_resolved: bool = False

    def decide(self, approve: bool, by: str, reason: str, at: float, *, auto: bool = False) -> None:
        if self.status is not ReviewStatus.OPEN:
            raise ReviewNotAllowed(f"review {self.id} is already {self.status.value}")
        if not reason.strip():
            raise InvalidReview("reason: required")
        self.status = ReviewStatus.APPROVED if approve else ReviewStatus.REJECTED
        self.decided_by = by
        self.decision_reason = reason
        self.closed_at = at
        self.auto_resolved = auto

    def close(self, reason: str, at: float) -> bool:
        if self.status is not ReviewStatus.OPEN:
            return False
        self.status = ReviewStatus.CLOSED
        self.decided_by = SYSTEM
        self.decision_reason = reason
        self.closed_at = at
        return True
