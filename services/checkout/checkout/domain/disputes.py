"""Disputes (chargebacks) and their order-tolerant state machine. Pure.

Stripe's dispute statuses move warning_needs_response -> warning_under_review ->
warning_closed, or needs_response -> under_review -> won | lost (charge_refunded closes one
too). `observe` keeps the furthest status seen, so a late `charge.dispute.updated` never
reopens a closed dispute; the money facts (funds withdrawn, funds reinstated) only ever turn
on. Each fact is published once: `facts_to_publish` says which ones a change newly made true.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CLOSED", "Dispute", "dispute_rank"]

CLOSED = frozenset({"won", "lost", "warning_closed", "charge_refunded"})
_RANK = {
    "warning_needs_response": 0,
    "needs_response": 0,
    "warning_under_review": 1,
    "under_review": 1,
    "warning_closed": 2,
    "charge_refunded": 2,
    "won": 2,
    "lost": 2,
}


def dispute_rank(status: str) -> int:
    return _RANK.get(status, 0)


@dataclass
class Dispute:
    id: str
    payment_id: str
    stripe_charge_id: str
    amount: int
    currency: str
    reason: str
    status: str
    evidence_due_by: float | None = None
    funds_withdrawn: bool = False
    funds_reinstated: bool = False
    opened_at: float = 0.0
    updated_at: float = 0.0

    @property
    def closed(self) -> bool:
        return self.status in CLOSED

    def observe(
        self, status: str, *, withdrawn: bool, reinstated: bool, evidence_due_by: float | None
    ) -> list[str]:
        """Apply what Stripe says now; returns the facts that became true (to publish)."""
        facts: list[str] = []
        if not self.closed and dispute_rank(status) >= dispute_rank(self.status):
            self.status = status
        if evidence_due_by and not self.closed:
            self.evidence_due_by = evidence_due_by
        if withdrawn and not self.funds_withdrawn:
            self.funds_withdrawn = True
            facts.append("funds_withdrawn")
        if reinstated and not self.funds_reinstated:
            self.funds_reinstated = True
            facts.append("funds_reinstated")
        return facts
