"""Fraud features: what a decision looks at, each with a defined window. Pure.

velocity_{customer,card,ip,email}_{10m,1h,24h}      (10 min, 1 h, 24 h)
    earlier payment attempts with the same customer / card fingerprint / IP / email
amount_zscore                                       (180 days)
    (amount - mean) / stddev of the customer's succeeded payments in this currency,
    clamped to [-5, 5]; 0 with fewer than 3
first_purchase                                      (180 days)
    1 when the customer has no succeeded payment
distinct_cards_per_customer                         (30 days) card fingerprints the customer used
distinct_customers_per_card                         (30 days) customers that used this card
card_ip_country_mismatch, card_shipping_country_mismatch, ip_shipping_country_mismatch
    1 when both countries are known and differ
declines_customer_24h, declines_card_24h            (24 h) declined attempts (any code)
never_retry_declines_card_30d                       (30 days) lost / stolen / fraudulent / ...
new_account                                         1 when the account is younger than a day
account_age_days                                    capped at 365; unknown: 0
radar_max_risk_score_prev                           (90 days) highest Radar risk_score / 100
    on earlier authorisations of this customer or card
radar_elevated_prev                                 (90 days) earlier authorisations Radar
    rated elevated or highest (the larger of the customer's and the card's counts)

A feature whose input is unknown (no IP, no email, no card fingerprint) is 0: missing data
never looks like a match. Counts are capped at 50 so one runaway card cannot overflow a score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = [
    "FEATURES",
    "WINDOWS",
    "History",
    "Signals",
    "compute_features",
]

WINDOWS = {"10m": 600, "1h": 3_600, "24h": 86_400}
HISTORY_DAYS = 180
DISTINCT_DAYS = 30
RADAR_DAYS = 90
_CAP = 50.0
DIMENSIONS = ("customer", "card", "ip", "email")

FEATURES: tuple[str, ...] = (
    *(f"velocity_{d}_{w}" for d in DIMENSIONS for w in WINDOWS),
    "amount_zscore",
    "first_purchase",
    "distinct_cards_per_customer",
    "distinct_customers_per_card",
    "card_ip_country_mismatch",
    "card_shipping_country_mismatch",
    "ip_shipping_country_mismatch",
    "declines_customer_24h",
    "declines_card_24h",
    "never_retry_declines_card_30d",
    "new_account",
    "account_age_days",
    "radar_max_risk_score_prev",
    "radar_elevated_prev",
)


@dataclass(frozen=True)
class Signals:
    """What is known about the payment being decided (request + the card's PaymentMethod)."""

    amount: int
    currency: str
    customer_ref: str
    card_fingerprint: str = ""
    card_country: str = ""
    ip_address: str = ""
    ip_country: str = ""
    email: str = ""
    shipping_country: str = ""
    customer_created_at: float | None = None  # unix seconds

    def subject(self) -> dict[str, str]:
        """The values list rules match on."""
        return {
            "customer_ref": self.customer_ref,
            "card_fingerprint": self.card_fingerprint,
            "card_country": self.card_country.upper(),
            "ip_address": self.ip_address,
            "ip_country": self.ip_country.upper(),
            "email": self.email.lower(),
            "shipping_country": self.shipping_country.upper(),
        }


@dataclass(frozen=True)
class History:
    """Aggregates over checkout's tables at decision time (adapters/fraud_history.py)."""

    # velocity[dimension][window] = earlier attempts in that window
    velocity: dict[str, dict[str, int]] = field(default_factory=dict)
    succeeded_count: int = 0  # customer's succeeded payments in this currency, 180 d
    succeeded_sum: int = 0
    succeeded_sum_sq: float = 0.0  # floating point: it passes 2**63 for heavy customers
    distinct_cards_per_customer: int = 0
    distinct_customers_per_card: int = 0
    declines_customer_24h: int = 0
    declines_card_24h: int = 0
    never_retry_declines_card_30d: int = 0
    radar_max_risk_score: int | None = None
    radar_elevated: int = 0


def _cap(n: float) -> float:
    return float(min(max(n, 0.0), _CAP))


def _mismatch(a: str, b: str) -> float:
    return 1.0 if a and b and a.upper() != b.upper() else 0.0


def _zscore(amount: int, h: History) -> float:
    if h.succeeded_count < 3:
        return 0.0
    mean = h.succeeded_sum / h.succeeded_count
    var = max(h.succeeded_sum_sq / h.succeeded_count - mean * mean, 0.0)
    std = math.sqrt(var)
    if std < max(1.0, 0.01 * mean):  # the same amount every time: any change is notable
        std = max(1.0, 0.01 * mean)
    return round(max(-5.0, min(5.0, (amount - mean) / std)), 6)


def compute_features(s: Signals, h: History, now: float) -> dict[str, float]:
    """Every feature in FEATURES, as the value its weight multiplies."""
    out: dict[str, float] = {}
    known = {
        "customer": bool(s.customer_ref),
        "card": bool(s.card_fingerprint),
        "ip": bool(s.ip_address),
        "email": bool(s.email),
    }
    for dim in DIMENSIONS:
        counts = h.velocity.get(dim, {})
        for w in WINDOWS:
            out[f"velocity_{dim}_{w}"] = _cap(counts.get(w, 0)) if known[dim] else 0.0
    out["amount_zscore"] = _zscore(s.amount, h)
    out["first_purchase"] = 1.0 if h.succeeded_count == 0 else 0.0
    out["distinct_cards_per_customer"] = _cap(h.distinct_cards_per_customer)
    out["distinct_customers_per_card"] = (
        _cap(h.distinct_customers_per_card) if s.card_fingerprint else 0.0
    )
    out["card_ip_country_mismatch"] = _mismatch(s.card_country, s.ip_country)
    out["card_shipping_country_mismatch"] = _mismatch(s.card_country, s.shipping_country)
    out["ip_shipping_country_mismatch"] = _mismatch(s.ip_country, s.shipping_country)
    out["declines_customer_24h"] = _cap(h.declines_customer_24h)
    out["declines_card_24h"] = _cap(h.declines_card_24h) if s.card_fingerprint else 0.0
    out["never_retry_declines_card_30d"] = (
        _cap(h.never_retry_declines_card_30d) if s.card_fingerprint else 0.0
    )
    if s.customer_created_at is None:
        out["new_account"] = 0.0
        out["account_age_days"] = 0.0
    else:
        age_days = max(0.0, (now - s.customer_created_at) / 86_400)
        out["new_account"] = 1.0 if age_days < 1.0 else 0.0
        out["account_age_days"] = round(min(age_days, 365.0), 6)
    out["radar_max_risk_score_prev"] = (
        0.0 if h.radar_max_risk_score is None else round(h.radar_max_risk_score / 100, 6)
    )
    out["radar_elevated_prev"] = _cap(h.radar_elevated)
    return out
