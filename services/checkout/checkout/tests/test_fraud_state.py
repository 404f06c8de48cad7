"""The learned engine's per-entity state and feature pipeline: windows, persistence, no look
ahead, label delay, the hand-set model's history from the same states."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest

from checkout.fraud.entity_state import DAY, EntityState, StateConfig
from checkout.fraud.facts import PaymentFacts
from checkout.fraud.handbook import Transaction
from checkout.fraud.pipeline import ENTITY_FEATURES, FEATURES, MISSING, FeaturePipeline
from checkout.fraud.replay import replay
from checkout.fraud.simulate import as_transactions, simulate

T0 = 1_525_132_800.0  # 2018-05-01T00:00:00Z
CFG = StateConfig(delay_days=7, maturity_days=7)


def _facts(i: int, at: float, **kw: object) -> PaymentFacts:
    base: dict[str, object] = {
        "payment_id": f"p{i}",
        "at": at,
        "amount": 1_000,
        "currency": "usd",
        "customer": "c1",
        "card": "fp1",
        "seller": "s1",
    }
    base.update(kw)
    return PaymentFacts(**base)


def _f(vec: list[float], name: str) -> float:
    return vec[FEATURES.index(name)]


def _transactions(seed: int = 3, days: int = 50) -> list[Transaction]:
    return as_transactions(simulate(days=days, customers=60, terminals=40, seed=seed))


def _all_features(txns: list[Transaction]) -> list[list[float]]:
    pipeline = FeaturePipeline(config=CFG)
    return [pipeline.features(t.facts) for t in replay(txns, pipeline, CFG.delay_days)]


# -- windows ----------------------------------------------------------------------------------


def test_counts_and_amounts_over_windows() -> None:
    p = FeaturePipeline(config=CFG)
    # payments 40 days, 20 days, 3 days, 2 hours and 10 minutes before "now"
    now = T0 + 60 * DAY + 12 * 3600
    for i, ago in enumerate((40 * DAY, 20 * DAY, 3 * DAY, 7200, 600)):
        p.record(_facts(i, now - ago, amount=1_000 * (i + 1)))
    vec = p.features(_facts(99, now, amount=10_000))
    assert len(vec) == len(FEATURES)
    assert _f(vec, "customer_n_1h") == 1
    assert _f(vec, "customer_n_1d") == 2
    assert _f(vec, "customer_n_7d") == 3
    assert _f(vec, "customer_n_30d") == 4
    assert _f(vec, "customer_amount_mean_1d") == pytest.approx(4_500)
    assert _f(vec, "customer_amount_mean_30d") == pytest.approx((2 + 3 + 4 + 5) * 1_000 / 4)
    assert _f(vec, "customer_amount_ratio_30d") == pytest.approx(10_000 / 3_500)
    assert _f(vec, "customer_hours_since_last") == pytest.approx(600 / 3600)
    assert _f(vec, "customer_days_known") == pytest.approx(40)


def test_unknown_entity_is_missing_and_a_new_one_has_no_history() -> None:
    p = FeaturePipeline(config=CFG)
    vec = p.features(_facts(1, T0, email="new@example.com"))
    assert len(vec) == len(FEATURES)
    for name in ENTITY_FEATURES:
        assert _f(vec, f"device_{name}") == MISSING  # no device sent: unknown
    assert _f(vec, "email_n_30d") == 0  # named but never seen
    assert _f(vec, "email_amount_mean_30d") == MISSING
    assert _f(vec, "card_ip_country_mismatch") == MISSING


def test_distinct_counts_and_first_time_pairs() -> None:
    p = FeaturePipeline(config=CFG)
    for i, card in enumerate(("fpA", "fpB", "fpC")):
        p.record(_facts(i, T0 + i * 3600, card=card, shipping="1 high st", ip_country="US"))
    vec = p.features(
        _facts(
            9, T0 + 5 * 3600, card="fpD", shipping="9 other rd", ip_country="GB", card_country="US"
        )
    )
    assert _f(vec, "cards_per_customer_30d") == 4  # three seen plus this one
    assert _f(vec, "customers_per_card_30d") == 1
    assert _f(vec, "shipping_new_for_customer") == 1
    assert _f(vec, "ip_country_new_for_card") == MISSING  # fpD never seen
    assert _f(vec, "card_ip_country_mismatch") == 1
    vec = p.features(_facts(10, T0 + 5 * 3600, card="fpA", shipping="1 high st", ip_country="GB"))
    assert _f(vec, "cards_per_customer_30d") == 3
    assert _f(vec, "shipping_new_for_customer") == 0
    assert _f(vec, "ip_country_new_for_card") == 1


def test_state_round_trips_through_json() -> None:
    p = FeaturePipeline(config=CFG)
    for i in range(30):
        f = _facts(i, T0 + i * 7 * 3600, amount=500 + i, email="a@x.io", ip="10.0.0.1")
        p.record(f, succeeded=i % 5 != 0, radar_score=i, radar_level="elevated")
        if i % 7 == 0:
            p.label(f)
    copy = FeaturePipeline(
        {k: EntityState.from_json(json.loads(json.dumps(v.to_json()))) for k, v in p.store.items()},
        CFG,
    )
    probe = _facts(99, T0 + 12 * DAY, amount=777, email="a@x.io", ip="10.0.0.1")
    assert copy.features(probe) == p.features(probe)
    assert copy.legacy_history(probe) == p.legacy_history(probe)
    with pytest.raises(ValueError, match="format version"):
        EntityState.from_json({"v": 99})


# -- no look-ahead ----------------------------------------------------------------------------


def test_features_never_see_later_payments() -> None:
    txns = _transactions()
    before = _all_features(txns)
    cut = len(txns) // 2
    rng = random.Random(5)
    # alter every later payment (amounts, labels, who pays where) and shuffle them, keeping
    # their times in order: nothing before the cut may change
    later = txns[cut:]
    times = sorted(t.facts.at for t in later)
    rng.shuffle(later)
    altered = [
        Transaction(
            replace(t.facts, at=at, amount=t.facts.amount * 7 + 1, seller=f"t{rng.randrange(5)}"),
            1 - t.fraud,
            0,
        )
        for t, at in zip(later, times, strict=True)
    ]
    after = _all_features(txns[:cut] + altered)
    assert after[:cut] == before[:cut]
    assert after[cut:] != before[cut:]  # the check would see a change where there is one


def test_replayed_features_equal_a_state_built_from_strictly_earlier_payments() -> None:
    txns = _transactions(seed=4, days=45)
    replayed = _all_features(txns)
    for i in (0, 1, len(txns) // 3, len(txns) // 2, len(txns) - 1):
        p = FeaturePipeline(config=CFG)
        now = txns[i].facts.at
        for t in txns[:i]:
            p.record(t.facts)
        for t in txns[:i]:
            if t.fraud and t.facts.at + CFG.delay_days * DAY <= now:
                p.label(t.facts)
        assert replayed[i] == p.features(txns[i].facts), i


def test_fraud_labels_arrive_only_after_the_delay() -> None:
    p = FeaturePipeline(config=CFG)
    fraud = Transaction(_facts(1, T0, seller="s9"), 1, 2)
    probes_at = [T0 + 7 * DAY - 1, T0 + 7 * DAY, T0 + 7 * DAY + 3600, T0 + 9 * DAY]
    probes = [
        Transaction(_facts(10 + i, at, customer=f"x{i}", card=f"x{i}", seller="s9"), 0, 0)
        for i, at in enumerate(probes_at)
    ]
    names = ("seller_fraud_known", "seller_risk_known_1d", "seller_risk_7d")
    seen = [
        tuple(_f(p.features(t.facts), n) for n in names)
        for t in replay([fraud, *probes], p, CFG.delay_days)
        if t is not fraud
    ]
    # just before the label time nothing is known; at it the label is; the risk of the
    # payments made 7-8 days ago takes it in an hour later (hour precision), the lagged
    # day windows (payments at least 8 whole days old) only on the ninth day
    assert seen[0] == (0.0, 0.0, 0.0)
    assert seen[1] == (1.0, 0.0, 0.0)
    assert seen[2] == (1.0, 1.0, 0.0)
    assert seen[3][0] == 1.0 and seen[3][2] == pytest.approx(1.0)


def test_legacy_history_from_the_same_states() -> None:
    p = FeaturePipeline(config=CFG)
    now = T0 + 40 * DAY
    p.record(_facts(1, now - 300, amount=1_000), succeeded=False, never_retry=True)
    p.record(_facts(2, now - 5_000, amount=2_000, card="fp2"))
    p.record(_facts(3, now - 2 * DAY, amount=3_000), radar_score=71, radar_level="elevated")
    p.record(_facts(4, now - 3 * DAY, amount=4_000))
    h = p.legacy_history(_facts(9, now))
    assert h.velocity["customer"] == {"10m": 1, "1h": 1, "24h": 2}
    assert h.velocity["card"] == {"10m": 1, "1h": 1, "24h": 1}
    assert (h.succeeded_count, h.succeeded_sum) == (3, 9_000)
    assert h.succeeded_sum_sq == 1_000**2 * (4 + 9 + 16)
    assert h.distinct_cards_per_customer == 2
    assert h.declines_customer_24h == 1 and h.declines_card_24h == 1
    assert h.never_retry_declines_card_30d == 1
    assert (h.radar_max_risk_score, h.radar_elevated) == (71, 1)
