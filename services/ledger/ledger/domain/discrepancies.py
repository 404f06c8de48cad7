"""Discrepancy kinds and the healing policy (pure; the policy comes from settings).

A discrepancy is *certain* when Stripe's own balance transaction proves the correction: the
ledger booked a fee or a converted amount other than the one Stripe's transaction carries, a
money movement Stripe recorded was never booked (its event was lost), a dispute's adjustment
was never booked, or the ledger moved funds to available that Stripe still holds pending.
Those may heal with an audited adjusting entry. Everything else (the books disagree with
the business's pricing model or FX expectation, an entry with no Stripe counterpart, a
payout whose figures disagree, an unconverted amount difference) waits for a human.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CERTAIN", "KINDS", "SETTLED_BY_HUMAN", "HealingPolicy"]

KINDS = (
    "missing_in_ledger",
    "missing_in_stripe",
    "amount_mismatch",
    "fee_mismatch",
    "fx_mismatch",
    "unbooked_dispute",
    "payout_mismatch",
    "timing",
)
# Kinds whose Stripe-side evidence can make a correction certain (when `certain` is set on
# the finding: a fee differing from the pricing model is a fee_mismatch too, but the books
# already equal Stripe there, so nothing is certain to correct).
CERTAIN = frozenset(
    {"missing_in_ledger", "unbooked_dispute", "fee_mismatch", "fx_mismatch", "timing"}
)
# Statuses a human's decision leaves: a later run finding the same discrepancy changes nothing.
SETTLED_BY_HUMAN = frozenset({"resolved", "dismissed"})


@dataclass(frozen=True)
class HealingPolicy:
    heal_kinds: frozenset[str] = CERTAIN
    max_amount: int = 500_000  # minor units; a larger correction goes to a human

    def should_heal(self, kind: str, certain: bool, amount: int) -> bool:
        return (
            certain
            and kind in self.heal_kinds
            and kind in (CERTAIN | {"amount_mismatch"})
            and abs(amount) <= self.max_amount
        )
