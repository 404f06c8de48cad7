"""Fraud labels from the platform's own history, and when each became known. Pure.

An Outcome is one fact checkout recorded about a payment after the fact. These make it fraud,
known at the outcome's time:

    dispute               reason fraudulent or unrecognized
    early_fraud_warning   any fraud_type (Radar's issuer report)
    review                rejected by a reviewer (not an automatic rejection on expiry:
                          that is a policy default, not a verdict)
    refund                reason fraudulent: the early-fraud-warning auto-refunds and the
                          refunds of rejected reviews. A refund that enforced a Radar block
                          (ref_radar_...) is Radar's prediction, not an outcome: training on
                          it would teach the model to copy Radar, so it is not a label.

A payment is fraud from its earliest such outcome; genuine once it is older than the
maturity window with no fraud known by then; otherwise not yet labelled (left out of
training, since most fraud reports arrive days to weeks after the charge).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "FRAUD_DISPUTE_REASONS",
    "Label",
    "Outcome",
    "fraud_source",
    "labels_from_outcomes",
    "training_label",
]

DAY = 86_400
FRAUD_DISPUTE_REASONS = frozenset({"fraudulent", "unrecognized"})
_RADAR_BLOCK_REFUND = "ref_radar_"


@dataclass(frozen=True, slots=True)
class Outcome:
    payment_id: str
    kind: str  # dispute | early_fraud_warning | review | refund
    reason: str  # dispute reason, warning fraud_type, review status, refund reason
    at: float  # unix seconds: when checkout learned it
    ref: str = ""  # the refund's id, the review's id, ...
    automatic: bool = False  # a review resolved by policy rather than by a reviewer


@dataclass(frozen=True, slots=True)
class Label:
    payment_id: str
    known_at: float
    source: str  # e.g. "dispute:fraudulent", "refund:fraudulent"


def fraud_source(o: Outcome) -> str | None:
    """Why `o` makes its payment fraud ("kind:reason"), or None when it does not."""
    if o.kind == "dispute" and o.reason in FRAUD_DISPUTE_REASONS:
        return f"dispute:{o.reason}"
    if o.kind == "early_fraud_warning":
        return f"early_fraud_warning:{o.reason or 'unspecified'}"
    if o.kind == "review" and o.reason == "rejected" and not o.automatic:
        return "review:rejected"
    if o.kind == "refund" and o.reason == "fraudulent":
        if o.ref.startswith(_RADAR_BLOCK_REFUND):
            return None
        return "refund:fraudulent"
    return None


def labels_from_outcomes(outcomes: Iterable[Outcome]) -> dict[str, Label]:
    """The earliest fraud outcome of each payment."""
    out: dict[str, Label] = {}
    for o in outcomes:
        source = fraud_source(o)
        if source is None or not o.payment_id:
            continue
        seen = out.get(o.payment_id)
        if seen is None or (o.at, source) < (seen.known_at, seen.source):
            out[o.payment_id] = Label(o.payment_id, o.at, source)
    return out


def training_label(
    payment_at: float, label: Label | None, as_of: float, maturity_days: float
) -> int | None:
    """1 fraud (known by `as_of`), 0 genuine (matured without a known fraud), None: not
    labelled yet as of `as_of`."""
    if label is not None and label.known_at <= as_of:
        return 1
    if payment_at + maturity_days * DAY <= as_of:
        return 0
    return None
