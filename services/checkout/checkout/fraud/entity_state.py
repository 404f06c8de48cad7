"""One entity's history, kept incrementally: what the learned features read. Pure, no I/O.

An entity (a customer, card, email, IP, device, shipping address or seller) keeps:

    days     day index -> bucket of counters (attempts, amounts and the largest, successes,
             fraud labels by the PAYMENT's day, declines, Radar), kept for
             `StateConfig.retention_days`
    hours    hour index -> (attempts, amounts, declines, fraud labels) for the label delay
             plus a day
    recent   the last RECENT attempt times (exact short velocity: 10 min, 1 h)
    links    other entities seen with it (kind -> value -> last seen), LINK_CAP per kind
    totals   lifetime attempts, successes, fraud labels known; first and last seen

Every update touches one bucket, and every read walks at most retention_days + 25 buckets,
so the cost of one payment's features does not grow with the entity's history. A state
round-trips through `to_json` / `from_json` (one row per entity in a store).

Amounts are summed in one currency per entity (the first one it paid in): a payment in
another currency counts as an attempt but adds no amount, since sums across currencies mean
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DAY", "HOUR", "LINK_CAP", "RECENT", "EntityState", "StateConfig"]

DAY = 86_400
HOUR = 3_600
RECENT = 50  # the legacy features cap counts at 50, so 50 times give them exactly
LINK_CAP = 32

# day bucket fields
N, NA, A, S, SA, SQ, F, D, X, R, M, MX = range(12)
_DAY_FIELDS = 12
# hour bucket fields
HN, HNA, HA, HD, HF = range(5)


@dataclass(frozen=True, slots=True)
class StateConfig:
    """delay_days: labels are taken as complete only for payments older than this (the lag
    of the risk windows). maturity_days: a payment this old without a fraud label counts as
    genuine. retention_days: day buckets kept (at least the 30-day windows and the lagged
    30-day risk window)."""

    delay_days: int = 7
    maturity_days: int = 7
    history_days: int = 30

    @property
    def hours_kept(self) -> int:
        """Hour buckets span the label delay and one more day: the risk of the payments
        made 1 day before the delay began, with the hour's precision."""
        return (self.delay_days + 1) * 24 + 2

    @property
    def retention_days(self) -> int:
        return max(self.history_days, 30 + self.delay_days, self.maturity_days) + 1


class EntityState:
    __slots__ = (
        "cache",
        "currency",
        "days",
        "first_seen",
        "fraud_total",
        "hours",
        "last_fraud_at",
        "last_seen",
        "links",
        "n_total",
        "ok_total",
        "recent",
    )

    def __init__(self) -> None:
        self.days: dict[int, list[int]] = {}
        self.hours: dict[int, list[int]] = {}
        self.recent: list[float] = []
        self.links: dict[str, dict[str, float]] = {}
        self.currency = ""
        self.first_seen = 0.0
        self.last_seen = 0.0
        self.n_total = 0
        self.ok_total = 0
        self.fraud_total = 0
        self.last_fraud_at = 0.0
        # sums over the days before the day it was computed for, kept by the pipeline and
        # dropped whenever one of those days changes; never persisted
        self.cache: Any = None

    def _changed(self, day: int) -> None:
        cache = self.cache
        if cache is not None and day < cache.today:
            self.cache = None

    # -- updates --------------------------------------------------------------------------

    def _day(self, at: float, cfg: StateConfig) -> list[int]:
        day = int(at // DAY)
        self._changed(day)
        bucket = self.days.get(day)
        if bucket is None:
            oldest = day - cfg.retention_days
            for d in [d for d in self.days if d <= oldest]:
                del self.days[d]
            bucket = self.days[day] = [0] * _DAY_FIELDS
            bucket[M] = -1
        return bucket

    def _hour(self, at: float, cfg: StateConfig) -> list[int]:
        hour = int(at // HOUR)
        bucket = self.hours.get(hour)
        if bucket is None:
            oldest = hour - cfg.hours_kept
            for h in [h for h in self.hours if h <= oldest]:
                del self.hours[h]
            bucket = self.hours[hour] = [0, 0, 0, 0, 0]
        return bucket

    def attempt(
        self, at: float, amount: int, currency: str, links: dict[str, str], cfg: StateConfig
    ) -> None:
        """A payment attempt naming this entity (before its outcome is known)."""
        if not self.currency:
            self.currency = currency
        same = currency == self.currency
        b = self._day(at, cfg)
        h = self._hour(at, cfg)
        b[N] += 1
        h[HN] += 1
        if same:
            b[NA] += 1
            b[A] += amount
            if amount > b[MX]:
                b[MX] = amount
            h[HNA] += 1
            h[HA] += amount
        self.recent.append(at)
        if len(self.recent) > RECENT:
            del self.recent[0]
        if not self.n_total:
            self.first_seen = at
        self.n_total += 1
        self.last_seen = max(self.last_seen, at)
        for kind, value in links.items():
            if not value:
                continue
            seen = self.links.setdefault(kind, {})
            seen[value] = at
            if len(seen) > LINK_CAP:
                del seen[min(seen, key=seen.__getitem__)]

    def outcome(
        self,
        at: float,
        amount: int,
        currency: str,
        cfg: StateConfig,
        *,
        succeeded: bool,
        never_retry: bool = False,
        radar_score: int | None = None,
        radar_elevated: bool = False,
    ) -> None:
        """How the attempt made at `at` ended (a success, or a decline and its advice),
        with Radar's verdict when there was one."""
        b = self._day(at, cfg)
        if succeeded:
            b[S] += 1
            self.ok_total += 1
            if currency == self.currency:
                b[SA] += amount
                b[SQ] += amount * amount
        else:
            b[D] += 1
            if never_retry:
                b[X] += 1
            hour = self.hours.get(int(at // HOUR))
            if hour is not None:
                hour[HD] += 1
        if radar_score is not None:
            b[M] = max(b[M], radar_score)
        if radar_elevated:
            b[R] += 1

    def fraud_label(self, payment_at: float, cfg: StateConfig) -> None:
        """A fraud label became known for a payment made at `payment_at`."""
        self.fraud_total += 1
        self.last_fraud_at = max(self.last_fraud_at, payment_at)
        day = int(payment_at // DAY)
        self._changed(day)
        bucket = self.days.get(day)
        if bucket is not None:
            bucket[F] += 1
        hour = self.hours.get(int(payment_at // HOUR))
        if hour is not None:
            hour[HF] += 1

    # -- persistence ----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "v": 1,
            "currency": self.currency,
            "days": {str(k): v for k, v in self.days.items()},
            "hours": {str(k): v for k, v in self.hours.items()},
            "recent": self.recent,
            "links": self.links,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "n_total": self.n_total,
            "ok_total": self.ok_total,
            "fraud_total": self.fraud_total,
            "last_fraud_at": self.last_fraud_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EntityState:
        if data.get("v") != 1:
            raise ValueError(f"entity state: unknown format version {data.get('v')!r}")
        st = cls()
        st.currency = str(data["currency"])
        st.days = {int(k): [int(x) for x in v] for k, v in data["days"].items()}
        st.hours = {int(k): [int(x) for x in v] for k, v in data["hours"].items()}
        st.recent = [float(t) for t in data["recent"]]
        st.links = {
            str(k): {str(v): float(t) for v, t in seen.items()} for k, seen in data["links"].items()
        }
        st.first_seen = float(data["first_seen"])
        st.last_seen = float(data["last_seen"])
        st.n_total = int(data["n_total"])
        st.ok_total = int(data["ok_total"])
        st.fraud_total = int(data["fraud_total"])
        st.last_fraud_at = float(data["last_fraud_at"])
        return st
