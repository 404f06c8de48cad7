"""The learned engine's feature pipeline: per-entity state in, one feature vector out. Pure.

    features(facts)      the vector (FEATURES order) for a payment about to be decided, from
                         what its entities' states hold: only what happened before it, and
                         labels only once known
    record(facts, ...)   the payment joins its entities' histories (after its decision)
    label(facts, ...)    a fraud label became known (at its label time, never earlier)
    legacy_history(...)  the same states as the hand-set model's History (features.py)
    evidence(...)        what the verification step cross-references (verify.py)

Per entity kind (facts.KINDS) the features are, with w in 1, 7, 30 days:

    {kind}_n_1h, {kind}_n_{w}d              earlier attempts (7 / 30 days: whole days, the
                                            oldest weighted by its part inside the window)
    {kind}_amount_mean_{w}d                 mean earlier amount (missing without history)
    {kind}_amount_ratio_30d                 this amount / that 30-day mean
    {kind}_amount_ratio_lagged_30d          this amount / the mean over the lagged 30 days
                                            (a baseline the recent, unlabelled payments
                                            of a compromised card do not inflate)
    {kind}_amount_max_ratio_7d              the largest amount of the last 7 days / that
                                            lagged mean
    {kind}_risk_{w}d, {kind}_risk_n_30d     fraud share of the payments made in the w days
                                            that END `delay_days` before today (labels are
                                            complete only that late: the handbook's lagged
                                            terminal risk), and that window's payments
    {kind}_risk_last_day                    the share on the latest such day with payments
    {kind}_risk_known_1d                    the share over the 24 hours of payments that
                                            ended `delay_days` (and an hour) ago: hour
                                            precision where the lagged windows have days
    {kind}_lagged_fraud_age_days            days since the latest such day with a fraud
    {kind}_lagged_first_fraud_age_days      days since the earliest one (how long a run of
                                            fraud at this entity has been going on)
    {kind}_fraud_known, {kind}_fraud_recent fraud labels known so far (lifetime; and for
                                            payments inside the delay, known early)
    {kind}_days_known, {kind}_hours_since_last

plus the amount, the amount's z-score against the customer's 30-day successes, distinct
counts (cards per customer, customers per card, ... over 30 days, this payment's included),
country mismatches, first-time pairs (a new shipping address for this customer, a new IP
country for this card, ...) and the account's age. An entity the payment does not name has
its features MISSING (-1: every feature is otherwise >= 0, except the z-score, which is 0
without history, as in the hand-set model): unknown never looks like a match. No NaN, so a
stored decision's features are plain JSON.
"""

from __future__ import annotations

import math
from collections.abc import MutableMapping
from dataclasses import dataclass

from .entity_state import (
    DAY,
    HA,
    HD,
    HF,
    HN,
    HNA,
    HOUR,
    MX,
    NA,
    SA,
    SQ,
    A,
    EntityState,
    F,
    M,
    N,
    R,
    S,
    StateConfig,
    X,
)
from .facts import KINDS, PaymentFacts
from .features import WINDOWS, History

__all__ = [
    "ENTITY_FEATURES",
    "FEATURES",
    "FEATURE_SET",
    "EntityEvidence",
    "Evidence",
    "FeaturePipeline",
    "Store",
]

FEATURE_SET = "payplane-entity-1"
MISSING = -1.0
ENTITY_FEATURES: tuple[str, ...] = (
    "n_1h",
    "n_1d",
    "n_7d",
    "n_30d",
    "amount_mean_1d",
    "amount_mean_7d",
    "amount_mean_30d",
    "amount_ratio_30d",
    "amount_ratio_lagged_30d",
    "amount_max_ratio_7d",
    "risk_1d",
    "risk_7d",
    "risk_30d",
    "risk_n_30d",
    "risk_last_day",
    "risk_known_1d",
    "lagged_fraud_age_days",
    "lagged_first_fraud_age_days",
    "fraud_known",
    "fraud_recent",
    "days_known",
    "hours_since_last",
)
# an entity the payment names but nobody has seen: no history, nothing known against it
_NEW_BLOCK = tuple(
    MISSING if name.startswith(("amount_", "lagged_")) or name == "hours_since_last" else 0.0
    for name in ENTITY_FEATURES
)
# (feature, owner kind, linked kind): distinct linked values over 30 days, this one included
DISTINCT: tuple[tuple[str, str, str], ...] = (
    ("cards_per_customer_30d", "customer", "card"),
    ("customers_per_card_30d", "card", "customer"),
    ("emails_per_card_30d", "card", "email"),
    ("cards_per_email_30d", "email", "card"),
    ("customers_per_ip_30d", "ip", "customer"),
    ("cards_per_ip_30d", "ip", "card"),
    ("cards_per_device_30d", "device", "card"),
    ("customers_per_device_30d", "device", "customer"),
    ("customers_per_shipping_30d", "shipping", "customer"),
)
# (feature, owner kind, linked kind): 1 when the owner has history but never this value
NOVEL: tuple[tuple[str, str, str], ...] = (
    ("ip_country_new_for_card", "card", "ip_country"),
    ("email_new_for_card", "card", "email"),
    ("shipping_new_for_customer", "customer", "shipping"),
    ("device_new_for_customer", "customer", "device"),
    ("seller_new_for_customer", "customer", "seller"),
)
FEATURES: tuple[str, ...] = (
    "amount",
    "amount_zscore_customer_30d",
    *(f"{k}_{f}" for k in KINDS for f in ENTITY_FEATURES),
    *(name for name, _, _ in DISTINCT),
    "card_ip_country_mismatch",
    "card_shipping_country_mismatch",
    "ip_shipping_country_mismatch",
    *(name for name, _, _ in NOVEL),
    "account_age_days",
)
_MISSING_BLOCK = [MISSING] * len(ENTITY_FEATURES)
_LINK_WINDOW = 30 * DAY
_RADAR_ELEVATED = ("elevated", "highest")

Store = MutableMapping[tuple[str, str], EntityState]
"""Where entity states live: (kind, value) -> state. A dict in memory; a table later."""


def _mismatch(a: str, b: str) -> float:
    if not a or not b:
        return MISSING
    return 1.0 if a.upper() != b.upper() else 0.0


@dataclass(frozen=True, slots=True)
class _Past:
    """An entity's sums over the days before `today`: they change only when the day turns
    or an earlier day's bucket changes (a late label or outcome), so they are computed once
    per entity and day and a payment's features add today's bucket to them."""

    today: int
    n7: int  # ages 1..6 (whole days inside both windows)
    na7: int
    a7: int
    e7: tuple[int, int, int]  # age 7: n, na, a (weighted by the part inside the window)
    n30: int  # ages 1..29
    na30: int
    a30: int
    e30: tuple[int, int, int]  # age 30
    max7: int  # the largest amount, ages 1..7
    s30: tuple[int, int, int]  # successes, their amounts and squares, ages 1..29
    recent_fraud: int  # labels for payments of ages 1..delay
    f1: int
    t1: int
    f7: int
    t7: int
    f30: int
    t30: int
    lagged_na: int
    lagged_a: int
    last_day: int  # the latest lagged day with payments (-1: none)
    last_fraud_day: int
    first_fraud_day: int


def _past(st: EntityState, today: int, lag: int) -> _Past:
    n7 = na7 = a7 = n30 = na30 = a30 = max7 = s = sa = sq = 0
    e7 = e30 = (0, 0, 0)
    f1 = t1 = f7 = t7 = f30 = t30 = lna = la = recent = 0
    last_day = last_fraud_day = first_fraud_day = -1
    for day, b in st.days.items():
        age = today - day
        if age < 1:
            continue
        if age <= 30:
            if age == 30:
                e30 = (b[N], b[NA], b[A])
            else:
                n30 += b[N]
                na30 += b[NA]
                a30 += b[A]
                s += b[S]
                sa += b[SA]
                sq += b[SQ]
            if age <= 7:
                if b[MX] > max7:
                    max7 = b[MX]
                if age == 7:
                    e7 = (b[N], b[NA], b[A])
                else:
                    n7 += b[N]
                    na7 += b[NA]
                    a7 += b[A]
        if age <= lag:
            recent += b[F]
        elif age <= lag + 30:
            f30 += b[F]
            t30 += b[N]
            lna += b[NA]
            la += b[A]
            if b[N] and day > last_day:
                last_day = day
            if b[F]:
                if day > last_fraud_day:
                    last_fraud_day = day
                if first_fraud_day < 0 or day < first_fraud_day:
                    first_fraud_day = day
            if age <= lag + 7:
                f7 += b[F]
                t7 += b[N]
                if age == lag + 1:
                    f1 += b[F]
                    t1 += b[N]
    return _Past(
        today,
        n7,
        na7,
        a7,
        e7,
        n30,
        na30,
        a30,
        e30,
        max7,
        (s, sa, sq),
        recent,
        f1,
        t1,
        f7,
        t7,
        f30,
        t30,
        lna,
        la,
        last_day,
        last_fraud_day,
        first_fraud_day,
    )


def _past_of(st: EntityState, today: int, lag: int) -> _Past:
    past = st.cache
    if not isinstance(past, _Past) or past.today != today:
        past = st.cache = _past(st, today, lag)
    return past


def _known_1d(st: EntityState, hour_now: int, cfg: StateConfig) -> tuple[int, int]:
    """(frauds, payments) among the payments made in the 24 hours before the delay (and an
    hour): the latest ones whose labels are all known."""
    kf = kn = 0
    first = hour_now - cfg.delay_days * 24 - 1
    hours = st.hours
    for hour in range(first - 23, first + 1):
        h = hours.get(hour)
        if h is not None:
            kf += h[HF]
            kn += h[HN]
    return kf, kn


def _entity_block(
    st: EntityState | None, now: float, amount: int, currency: str, cfg: StateConfig
) -> list[float]:
    if st is None:
        return list(_NEW_BLOCK)
    today = int(now // DAY)
    edge = 1.0 - (now - today * DAY) / DAY  # the oldest day's share inside the window
    p = _past_of(st, today, cfg.delay_days)
    b = st.days.get(today)
    tn, tna, ta, tmx, tf = (b[N], b[NA], b[A], b[MX], b[F]) if b is not None else (0, 0, 0, 0, 0)
    n7 = tn + p.n7 + edge * p.e7[0]
    na7 = tna + p.na7 + edge * p.e7[1]
    a7 = ta + p.a7 + edge * p.e7[2]
    n30 = tn + p.n30 + edge * p.e30[0]
    na30 = tna + p.na30 + edge * p.e30[1]
    a30 = ta + p.a30 + edge * p.e30[2]
    max7 = max(tmx, p.max7)
    hour_now = int(now // HOUR)
    hedge = 1.0 - (now - hour_now * HOUR) / HOUR
    n1 = na1 = a1 = 0.0
    hours = st.hours
    for age in range(25):
        h = hours.get(hour_now - age)
        if h is not None:
            w = hedge if age == 24 else 1.0
            n1 += w * h[HN]
            na1 += w * h[HNA]
            a1 += w * h[HA]
    kf, kn = _known_1d(st, hour_now, cfg)
    n1h = 0
    for t in reversed(st.recent):
        if t <= now - HOUR:
            break
        n1h += 1
    same = currency == st.currency
    mean30 = a30 / na30 if na30 > 0 and same else MISSING
    lagged_mean = p.lagged_a / p.lagged_na if p.lagged_na > 0 and same else MISSING
    last = st.days[p.last_day] if p.last_day >= 0 else None
    return [
        float(n1h),
        n1,
        n7,
        n30,
        a1 / na1 if na1 > 0 and same else MISSING,
        a7 / na7 if na7 > 0 and same else MISSING,
        mean30,
        amount / mean30 if mean30 > 0 else MISSING,
        amount / lagged_mean if lagged_mean > 0 else MISSING,
        max7 / lagged_mean if lagged_mean > 0 and max7 else MISSING,
        p.f1 / p.t1 if p.t1 else 0.0,
        p.f7 / p.t7 if p.t7 else 0.0,
        p.f30 / p.t30 if p.t30 else 0.0,
        float(p.t30),
        last[F] / last[N] if last is not None else 0.0,
        kf / kn if kn else 0.0,
        float(today - p.last_fraud_day) if p.last_fraud_day >= 0 else MISSING,
        float(today - p.first_fraud_day) if p.first_fraud_day >= 0 else MISSING,
        float(st.fraud_total),
        float(p.recent_fraud + tf),
        min((now - st.first_seen) / DAY, 365.0),
        min((now - st.last_seen) / HOUR, 720.0),
    ]


@dataclass(frozen=True, slots=True)
class EntityEvidence:
    """One entity's record as the verification step reads it."""

    kind: str
    value: str
    seen: int  # earlier attempts (lifetime)
    matured_good: int  # successes older than the maturity window, less the known frauds
    fraud_known: int
    lagged_risk_30d: float
    lagged_fraud_30d: int
    latest_known_risk: float  # fraud share of the latest payments whose labels are all known
    # (the 24 hours before the delay; else the latest lagged day with payments)
    fraud_recent: int  # labels known early for payments inside the delay


@dataclass(frozen=True, slots=True)
class Evidence:
    entities: dict[str, EntityEvidence]  # by kind, for the kinds the payment names
    amount_ratio_30d: float  # amount / the card's (else customer's) 30-day mean; NaN unknown
    amount_zscore: float  # against the customer's 30-day successes; NaN with fewer than 3
    linked_before: dict[str, bool]  # "customer->shipping": seen together before
    country_mismatches: tuple[str, ...]


class FeaturePipeline:
    """The one feature path: the evaluation replays payments through it, and the live
    service will call it the same way (features, decide, record; labels as they come)."""

    def __init__(self, store: Store | None = None, config: StateConfig | None = None) -> None:
        self.store: Store = store if store is not None else {}
        self.config = config or StateConfig()

    def _states(self, facts: PaymentFacts) -> dict[str, EntityState | None]:
        out: dict[str, EntityState | None] = {}
        for kind in KINDS:
            value = facts.entity(kind)
            if value:
                out[kind] = self.store.get((kind, value))
        return out

    def features(self, facts: PaymentFacts) -> list[float]:
        """The vector for `facts` (in FEATURES order) at facts.at, before it is recorded."""
        now, cfg = facts.at, self.config
        states = self._states(facts)
        vec: list[float] = [float(facts.amount), self._zscore(states.get("customer"), facts)]
        for kind in KINDS:
            if kind in states:
                vec += _entity_block(states[kind], now, facts.amount, facts.currency, cfg)
            else:
                vec += _MISSING_BLOCK
        since = now - _LINK_WINDOW
        for _, owner, linked in DISTINCT:
            if owner not in states:
                vec.append(MISSING)
                continue
            st = states[owner]
            seen = st.links.get(linked, {}) if st is not None else {}
            n = sum(1 for t in seen.values() if t >= since)
            mine = facts.entity(linked)
            if mine and not (mine in seen and seen[mine] >= since):
                n += 1
            vec.append(float(n))
        vec.append(_mismatch(facts.card_country, facts.ip_country))
        vec.append(_mismatch(facts.card_country, facts.shipping_country))
        vec.append(_mismatch(facts.ip_country, facts.shipping_country))
        for _, owner, linked in NOVEL:
            st = states.get(owner)
            mine = facts.ip_country.upper() if linked == "ip_country" else facts.entity(linked)
            if st is None or not mine:
                vec.append(MISSING)
            else:
                vec.append(0.0 if mine in st.links.get(linked, {}) else 1.0)
        if facts.customer_created_at is None:
            vec.append(MISSING)
        else:
            vec.append(min(max(0.0, (now - facts.customer_created_at) / DAY), 365.0))
        return vec

    def _zscore(self, st: EntityState | None, facts: PaymentFacts) -> float:
        n, total, sq = self._successes(st, facts.at, 30, facts.currency)
        if n < 3:
            return 0.0
        mean = total / n
        std = math.sqrt(max(sq / n - mean * mean, 0.0))
        std = max(std, 1.0, 0.01 * mean)
        return max(-10.0, min(10.0, (facts.amount - mean) / std))

    def _successes(
        self, st: EntityState | None, now: float, days: int, currency: str
    ) -> tuple[int, int, int]:
        if st is None or st.currency != currency:
            return 0, 0, 0
        today = int(now // DAY)
        if days == 30:
            b = st.days.get(today)
            s, sa, sq = _past_of(st, today, self.config.delay_days).s30
            if b is None:
                return s, sa, sq
            return s + b[S], sa + b[SA], sq + b[SQ]
        oldest = today - days
        n = total = sq = 0
        for day, b in st.days.items():
            if day > oldest:
                n += b[S]
                total += b[SA]
                sq += b[SQ]
        return n, total, sq

    # -- updates --------------------------------------------------------------------------

    def record(
        self,
        facts: PaymentFacts,
        *,
        succeeded: bool | None = True,
        never_retry: bool = False,
        radar_score: int | None = None,
        radar_level: str = "",
    ) -> None:
        """The payment joins its entities' histories. `succeeded=None`: the outcome is not
        known yet (call `outcome` when it is)."""
        values = {kind: facts.entity(kind) for kind in KINDS}
        values["ip_country"] = facts.ip_country.upper()
        for kind in KINDS:
            value = values[kind]
            if not value:
                continue
            st = self.store.get((kind, value))
            if st is None:
                st = EntityState()
            links = {k: v for k, v in values.items() if k != kind}
            st.attempt(facts.at, facts.amount, facts.currency, links, self.config)
            self.store[(kind, value)] = st
        if succeeded is not None:
            self.outcome(
                facts,
                succeeded=succeeded,
                never_retry=never_retry,
                radar_score=radar_score,
                radar_level=radar_level,
            )

    def outcome(
        self,
        facts: PaymentFacts,
        *,
        succeeded: bool,
        never_retry: bool = False,
        radar_score: int | None = None,
        radar_level: str = "",
    ) -> None:
        for kind in KINDS:
            value = facts.entity(kind)
            st = self.store.get((kind, value)) if value else None
            if st is None:
                continue
            st.outcome(
                facts.at,
                facts.amount,
                facts.currency,
                self.config,
                succeeded=succeeded,
                never_retry=never_retry,
                radar_score=radar_score,
                radar_elevated=radar_level in _RADAR_ELEVATED,
            )
            self.store[(kind, value)] = st

    def label(self, facts: PaymentFacts) -> None:
        """A fraud label for `facts` became known now (call it at the label's known_at)."""
        for kind in KINDS:
            value = facts.entity(kind)
            st = self.store.get((kind, value)) if value else None
            if st is None:
                continue
            st.fraud_label(facts.at, self.config)
            self.store[(kind, value)] = st

    # -- the hand-set model and the verification step --------------------------------------

    def legacy_history(self, facts: PaymentFacts) -> History:
        """The hand-set model's History (features.py) from the same states. Windows longer
        than the states' retention (the 180-day amount history, 90-day Radar) are read over
        what is retained."""
        now = facts.at
        states = self._states(facts)
        velocity: dict[str, dict[str, int]] = {}
        for dim, kind in (
            ("customer", "customer"),
            ("card", "card"),
            ("ip", "ip"),
            ("email", "email"),
        ):
            st = states.get(kind)
            counts = {w: 0 for w in WINDOWS}
            if st is not None:
                for w, seconds in WINDOWS.items():
                    counts[w] = sum(1 for t in st.recent if t > now - seconds)
            velocity[dim] = counts
        cust, card = states.get("customer"), states.get("card")
        n, total, sq = self._successes(cust, now, self.config.retention_days, facts.currency)
        since = now - _LINK_WINDOW

        def linked(st: EntityState | None, kind: str) -> int:
            seen = st.links.get(kind, {}) if st is not None else {}
            return sum(1 for t in seen.values() if t >= since)

        def declines_24h(st: EntityState | None) -> int:
            if st is None:
                return 0
            hour_now = int(now // HOUR)
            return sum(h[HD] for hr, h in st.hours.items() if hour_now - hr < 24)

        def days(st: EntityState | None, field: int, within: int) -> list[int]:
            if st is None:
                return []
            today = int(now // DAY)
            return [b[field] for d, b in st.days.items() if today - d < within]

        radar = [s for st in (cust, card) for s in days(st, M, 90) if s >= 0]
        return History(
            velocity=velocity,
            succeeded_count=n,
            succeeded_sum=total,
            succeeded_sum_sq=sq,
            distinct_cards_per_customer=linked(cust, "card"),
            distinct_customers_per_card=linked(card, "customer"),
            declines_customer_24h=declines_24h(cust),
            declines_card_24h=declines_24h(card),
            never_retry_declines_card_30d=sum(days(card, X, 30)),
            radar_max_risk_score=max(radar) if radar else None,
            radar_elevated=max(sum(days(cust, R, 90)), sum(days(card, R, 90))),
        )

    def evidence(self, facts: PaymentFacts) -> Evidence:
        now, cfg = facts.at, self.config
        today = int(now // DAY)
        states = self._states(facts)
        entities: dict[str, EntityEvidence] = {}
        for kind, st in states.items():
            if st is None:
                entities[kind] = EntityEvidence(kind, facts.entity(kind), 0, 0, 0, 0.0, 0, 0.0, 0)
                continue
            young_ok = lagged_n = lagged_f = recent_f = 0
            last_day = -1
            for day, b in st.days.items():
                age = today - day
                if age < cfg.maturity_days:
                    young_ok += b[S]
                if age <= cfg.delay_days:
                    recent_f += b[F]
                elif age <= cfg.delay_days + 30:
                    lagged_n += b[N]
                    lagged_f += b[F]
                    if b[N] and day > last_day:
                        last_day = day
            matured = max(0, st.ok_total - young_ok - st.fraud_total)
            kf, kn = _known_1d(st, int(now // HOUR), cfg)
            if kn:
                latest = kf / kn
            elif last_day >= 0:
                latest = st.days[last_day][F] / st.days[last_day][N]
            else:
                latest = 0.0
            entities[kind] = EntityEvidence(
                kind=kind,
                value=facts.entity(kind),
                seen=st.n_total,
                matured_good=matured,
                fraud_known=st.fraud_total,
                lagged_risk_30d=lagged_f / lagged_n if lagged_n else 0.0,
                lagged_fraud_30d=lagged_f,
                latest_known_risk=latest,
                fraud_recent=recent_f,
            )
        linked_before: dict[str, bool] = {}
        for owner in ("customer", "card"):
            st = states.get(owner)
            for other in ("card", "email", "device", "shipping", "ip"):
                mine = facts.entity(other)
                if other == owner or not mine or owner not in states:
                    continue
                linked_before[f"{owner}->{other}"] = bool(
                    st is not None and mine in st.links.get(other, {})
                )
        ratio = MISSING
        for kind in ("card", "customer"):
            st = states.get(kind)
            if st is not None:
                block = _entity_block(st, now, facts.amount, facts.currency, cfg)
                ratio = block[ENTITY_FEATURES.index("amount_ratio_30d")]
                break
        mismatches = tuple(
            name
            for name, a, b in (
                ("card_ip_country", facts.card_country, facts.ip_country),
                ("card_shipping_country", facts.card_country, facts.shipping_country),
                ("ip_shipping_country", facts.ip_country, facts.shipping_country),
            )
            if _mismatch(a, b) == 1.0
        )
        return Evidence(
            entities=entities,
            amount_ratio_30d=ratio,
            amount_zscore=self._zscore(states.get("customer"), facts),
            linked_before=linked_before,
            country_mismatches=mismatches,
        )
