"""The verification step: a payment the engine would send to review is first settled
automatically when the evidence is conclusive. Pure and deterministic: the same facts,
evidence and Radar verdict give the same verdict and reasons.

    verify(facts, evidence, radar) -> Verification(verdict, reasons)

Verdicts (the first rule group that holds wins):

    reject     something the payment names is known fraudulent: the email, device or
               shipping address carries a fraud label, or the card (the customer) does and
               has fewer than 5 matured good payments; or the seller is in a run of fraud
               (at least 2 labelled frauds and a fraud share of at least a half over the
               lagged 30 days and among its latest payments whose labels are all known:
               a run that has not visibly ended); or Radar
               blocked the payment or rated it highest risk
    approve    the card (or, without one, the customer) has at least 5 matured good
               payments and nothing it names has a fraud label; the amount is in line with
               its history (at most 2x its 30-day mean and a z-score under 3); every email,
               device and shipping address was seen with it before; the countries agree;
               the seller has no fraud in its lagged window; Radar is not elevated
    challenge  the card carries a fraud label but has a long good record (the cardholder's
               card, stolen from); or it has good history and no fraud label, but the
               amount is out of line or an email, device or address is new to it: 3-D
               Secure lets the cardholder prove it is them, which someone holding stolen
               card details cannot
    human      anything else: inconclusive, a reviewer decides

Evidence comes from the engine's per-entity state (pipeline.FeaturePipeline.evidence): the
same history the features read, with labels only as far as they are known.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .facts import PaymentFacts
from .pipeline import EntityEvidence, Evidence

__all__ = ["RadarSignal", "Verdict", "Verification", "verify"]

GOOD_HISTORY = 5
MAX_RATIO = 2.0
MAX_ZSCORE = 3.0
SELLER_RUN_FRAUDS = 2
SELLER_RUN_SHARE = 0.5


class Verdict(StrEnum):
    APPROVE = "approve"
    CHALLENGE = "challenge"
    REJECT = "reject"
    HUMAN = "human"


@dataclass(frozen=True, slots=True)
class RadarSignal:
    risk_level: str = ""  # normal | elevated | highest
    outcome_type: str = ""  # authorized | manual_review | blocked | ...


@dataclass(frozen=True, slots=True)
class Verification:
    verdict: Verdict
    reasons: tuple[str, ...]


def _fraud(e: EntityEvidence | None) -> bool:
    return e is not None and e.fraud_known > 0


def verify(
    facts: PaymentFacts, evidence: Evidence, radar: RadarSignal | None = None
) -> Verification:
    ents = evidence.entities
    reject: list[str] = []
    for kind in ("email", "device", "shipping"):
        e = ents.get(kind)
        if _fraud(e):
            assert e is not None
            reject.append(f"{kind}_known_fraud:{e.fraud_known}")
    payer = ents.get("card") or ents.get("customer")
    compromised = [
        f"{kind}_known_fraud:{e.fraud_known}"
        for kind in ("card", "customer")
        if (e := ents.get(kind)) is not None and e.fraud_known > 0
    ]
    seller = ents.get("seller")
    if (
        seller is not None
        and seller.lagged_fraud_30d >= SELLER_RUN_FRAUDS
        and seller.lagged_risk_30d >= SELLER_RUN_SHARE
        and seller.latest_known_risk >= SELLER_RUN_SHARE
    ):
        reject.append(f"seller_fraud_run:{seller.lagged_fraud_30d}@{seller.lagged_risk_30d:.2f}")
    if radar is not None and (radar.outcome_type == "blocked" or radar.risk_level == "highest"):
        reject.append(f"radar:{radar.risk_level}/{radar.outcome_type}")
    if compromised and (payer is None or payer.matured_good < GOOD_HISTORY):
        reject += compromised
    if reject:
        return Verification(Verdict.REJECT, tuple(reject))
    if compromised:
        assert payer is not None
        # a card with a confirmed fraud and a long good record is most likely the
        # cardholder's own card, stolen from: 3-D Secure tells the cardholder from the thief
        return Verification(
            Verdict.CHALLENGE, (*compromised, f"payer_good_history:{payer.matured_good}")
        )

    if payer is None or payer.matured_good < GOOD_HISTORY:
        got = 0 if payer is None else payer.matured_good
        return Verification(Verdict.HUMAN, (f"payer_history_short:{got}<{GOOD_HISTORY}",))
    out_of_line: list[str] = []
    ratio, z = evidence.amount_ratio_30d, evidence.amount_zscore
    if ratio < 0 or ratio > MAX_RATIO:
        out_of_line.append("amount_no_baseline" if ratio < 0 else f"amount_ratio:{ratio:.2f}")
    if z >= MAX_ZSCORE:
        out_of_line.append(f"amount_zscore:{z:.2f}")
    new = sorted(
        k
        for k, seen in evidence.linked_before.items()
        if not seen and k.split("->")[1] in ("email", "device", "shipping")
    )
    out_of_line += [f"new_pair:{k}" for k in new]
    doubts: list[str] = [f"country_mismatch:{m}" for m in evidence.country_mismatches]
    if seller is not None and (seller.lagged_fraud_30d or seller.fraud_recent):
        doubts.append(f"seller_some_fraud:{seller.lagged_fraud_30d + seller.fraud_recent}")
    if radar is not None and (
        radar.risk_level == "elevated" or radar.outcome_type == "manual_review"
    ):
        doubts.append(f"radar:{radar.risk_level or radar.outcome_type}")
    history = f"payer_good_history:{payer.matured_good}"
    if not out_of_line and not doubts:
        return Verification(Verdict.APPROVE, (history, "amount_in_line", "known_pairs"))
    if out_of_line and not doubts:
        return Verification(Verdict.CHALLENGE, (history, *out_of_line))
    return Verification(Verdict.HUMAN, (history, *out_of_line, *doubts))
