"""The fraud engine's pure parts: each feature, each rule, determinism, explanations."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from checkout.fraud.features import FEATURES, History, Signals, compute_features
from checkout.fraud.model import (
    DEFAULT_MODEL_PATH,
    Decision,
    FraudModel,
    ModelError,
    assess,
    logistic,
    with_radar,
)

NOW = 1_750_000_000.0


def _signals(**kw: Any) -> Signals:
    base: dict[str, Any] = {
        "amount": 2_000,
        "currency": "usd",
        "customer_ref": "c1",
        "card_fingerprint": "fp1",
        "card_country": "US",
        "ip_address": "10.0.0.1",
        "ip_country": "US",
        "email": "a@example.com",
        "shipping_country": "US",
    }
    base.update(kw)
    return Signals(**base)


def _model(**kw: Any) -> FraudModel:
    data: dict[str, Any] = {
        "version": "test-1",
        "bias": -3.0,
        "weights": {"velocity_card_10m": 1.0, "first_purchase": 0.5},
        "thresholds": {"challenge": 0.5, "review": 0.75, "block": 0.9},
    }
    data.update(kw)
    return FraudModel.from_dict(data)


# -- features -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dim", ["customer", "card", "ip", "email"])
def test_velocity_per_dimension_and_window(dim: str) -> None:
    h = History(velocity={dim: {"10m": 2, "1h": 5, "24h": 9}})
    f = compute_features(_signals(), h, NOW)
    assert (f[f"velocity_{dim}_10m"], f[f"velocity_{dim}_1h"], f[f"velocity_{dim}_24h"]) == (
        2.0,
        5.0,
        9.0,
    )
    others = [d for d in ("customer", "card", "ip", "email") if d != dim]
    assert all(f[f"velocity_{d}_1h"] == 0.0 for d in others)


def test_unknown_inputs_never_count_as_matches() -> None:
    h = History(
        velocity={"ip": {"10m": 3}, "email": {"10m": 3}, "card": {"10m": 3}},
        declines_card_24h=4,
        distinct_customers_per_card=7,
    )
    f = compute_features(_signals(ip_address="", email="", card_fingerprint=""), h, NOW)
    assert f["velocity_ip_10m"] == f["velocity_email_10m"] == f["velocity_card_10m"] == 0.0
    assert f["declines_card_24h"] == f["distinct_customers_per_card"] == 0.0


def test_counts_are_capped() -> None:
    f = compute_features(_signals(), History(velocity={"card": {"24h": 10_000}}), NOW)
    assert f["velocity_card_24h"] == 50.0


def test_amount_zscore_against_the_customers_history() -> None:
    # history 1000, 2000, 3000: mean 2000, population stddev 816.5
    h = History(succeeded_count=3, succeeded_sum=6_000, succeeded_sum_sq=14_000_000)
    f = compute_features(_signals(amount=4_000), h, NOW)
    assert f["amount_zscore"] == pytest.approx((4_000 - 2_000) / math.sqrt(2_000_000 / 3), 1e-5)
    assert f["first_purchase"] == 0.0
    assert compute_features(_signals(amount=10**7), h, NOW)["amount_zscore"] == 5.0
    few = History(succeeded_count=2, succeeded_sum=2_000, succeeded_sum_sq=2_000_000)
    assert compute_features(_signals(amount=9_000), few, NOW)["amount_zscore"] == 0.0


def test_first_purchase() -> None:
    assert compute_features(_signals(), History(), NOW)["first_purchase"] == 1.0


def test_distinct_cards_and_customers() -> None:
    h = History(distinct_cards_per_customer=4, distinct_customers_per_card=3)
    f = compute_features(_signals(), h, NOW)
    assert (f["distinct_cards_per_customer"], f["distinct_customers_per_card"]) == (4.0, 3.0)


def test_country_mismatches() -> None:
    f = compute_features(
        _signals(card_country="US", ip_country="NG", shipping_country="GB"), History(), NOW
    )
    assert f["card_ip_country_mismatch"] == 1.0
    assert f["card_shipping_country_mismatch"] == 1.0
    assert f["ip_shipping_country_mismatch"] == 1.0
    same = compute_features(_signals(ip_country="us", shipping_country=""), History(), NOW)
    assert same["card_ip_country_mismatch"] == 0.0
    assert same["card_shipping_country_mismatch"] == 0.0  # unknown is not a mismatch


def test_recent_declines() -> None:
    h = History(declines_customer_24h=2, declines_card_24h=3, never_retry_declines_card_30d=1)
    f = compute_features(_signals(), h, NOW)
    assert (f["declines_customer_24h"], f["declines_card_24h"]) == (2.0, 3.0)
    assert f["never_retry_declines_card_30d"] == 1.0


def test_account_age() -> None:
    young = compute_features(_signals(customer_created_at=NOW - 3_600), History(), NOW)
    assert young["new_account"] == 1.0 and young["account_age_days"] == pytest.approx(
        1 / 24, abs=1e-6
    )
    old = compute_features(_signals(customer_created_at=NOW - 400 * 86_400), History(), NOW)
    assert old["new_account"] == 0.0 and old["account_age_days"] == 365.0
    unknown = compute_features(_signals(customer_created_at=None), History(), NOW)
    assert unknown["new_account"] == unknown["account_age_days"] == 0.0


def test_radar_outcome_of_previous_authorisations() -> None:
    f = compute_features(_signals(), History(radar_max_risk_score=72, radar_elevated=2), NOW)
    assert f["radar_max_risk_score_prev"] == 0.72 and f["radar_elevated_prev"] == 2.0
    assert compute_features(_signals(), History(), NOW)["radar_max_risk_score_prev"] == 0.0


def test_every_feature_is_computed() -> None:
    assert set(compute_features(_signals(), History(), NOW)) == set(FEATURES)


# -- score and rules ------------------------------------------------------------------------------


def test_score_thresholds_decide() -> None:
    m = _model()
    f = compute_features(_signals(), History(velocity={"card": {"10m": 0}}), NOW)
    assert assess(m, _signals(), {**f, "first_purchase": 0.0}).decision is Decision.ALLOW
    for burst, want in ((3.2, Decision.CHALLENGE), (4.5, Decision.REVIEW), (6, Decision.BLOCK)):
        a = assess(m, _signals(), {**f, "first_purchase": 0.0, "velocity_card_10m": burst})
        assert a.decision is want and a.score_decision is want and a.rules_fired == ()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("customer_ref", "c1"),
        ("card_fingerprint", "fp1"),
        ("email", "A@Example.com"),
        ("ip_address", "10.0.0.1"),
        ("card_country", "us"),
        ("ip_country", "US"),
        ("shipping_country", "US"),
    ],
)
def test_block_list_blocks_and_beats_the_allow_list(field: str, value: str) -> None:
    m = _model(lists={"block": {field: [value]}, "allow": {"customer_ref": ["c1"]}})
    a = assess(m, _signals(), compute_features(_signals(), History(), NOW))
    assert a.decision is Decision.BLOCK and a.rules_fired == (f"block_list:{field}",)


def test_allow_list_allows_whatever_the_score_and_limits() -> None:
    m = _model(
        lists={"allow": {"email": ["a@example.com"]}},
        limits=[{"name": "any", "feature": "amount", "at_least": 1, "action": "block"}],
    )
    f = {**compute_features(_signals(), History(), NOW), "velocity_card_10m": 20.0}
    a = assess(m, _signals(), f)
    assert a.score_decision is Decision.BLOCK
    assert a.decision is Decision.ALLOW and a.rules_fired == ("allow_list:email",)


def test_hard_limits_only_raise_the_decision() -> None:
    m = _model(
        limits=[
            {"name": "big_usd", "feature": "amount", "currency": "usd", "at_least": 5_000,
             "action": "review"},
            {"name": "card_declines", "feature": "declines_card_24h", "at_least": 3,
             "action": "block"},
            {"name": "soft", "feature": "first_purchase", "at_least": 1, "action": "allow"},
        ]
    )  # fmt: skip
    f = compute_features(_signals(), History(), NOW)
    assert assess(m, _signals(amount=4_999), f).decision is Decision.ALLOW
    big = assess(m, _signals(amount=5_000), f)
    assert big.decision is Decision.REVIEW and "limit:big_usd" in big.rules_fired
    assert assess(m, _signals(amount=5_000, currency="eur"), f).decision is Decision.ALLOW
    f3 = {**f, "declines_card_24h": 3.0}
    assert assess(m, _signals(), f3).decision is Decision.BLOCK
    hot = {**f, "velocity_card_10m": 4.5}  # score says REVIEW; an "allow" limit cannot lower it
    assert assess(m, _signals(), hot).decision is Decision.REVIEW


def test_radar_joins_after_authorisation() -> None:
    assert with_radar(Decision.ALLOW, "elevated", "manual_review") is Decision.REVIEW
    assert with_radar(Decision.CHALLENGE, "elevated", "authorized") is Decision.REVIEW
    assert with_radar(Decision.ALLOW, "highest", "authorized") is Decision.BLOCK
    assert with_radar(Decision.ALLOW, "normal", "blocked") is Decision.BLOCK
    assert with_radar(Decision.REVIEW, "normal", "authorized") is Decision.REVIEW
    assert with_radar(Decision.ALLOW, "normal", "authorized") is Decision.ALLOW


def test_bad_models_are_refused_with_the_reason() -> None:
    with pytest.raises(ModelError, match="unknown features"):
        _model(weights={"nope": 1.0})
    with pytest.raises(ModelError, match="thresholds"):
        _model(thresholds={"challenge": 0.9, "review": 0.5, "block": 0.95})
    with pytest.raises(ModelError, match=r"lists\.block\.phone"):
        _model(lists={"block": {"phone": ["1"]}})
    with pytest.raises(ModelError, match="limits"):
        _model(limits=[{"name": "x", "feature": "amount", "at_least": 1, "action": "maybe"}])


def test_the_shipped_default_model_loads_and_allows_an_ordinary_payment() -> None:
    m = FraudModel.load(DEFAULT_MODEL_PATH)
    assert set(m.weights) <= set(FEATURES)
    s = _signals(customer_created_at=NOW - 90 * 86_400)
    h = History(succeeded_count=5, succeeded_sum=10_000, succeeded_sum_sq=20_200_000)
    assert assess(m, s, compute_features(s, h, NOW)).decision is Decision.ALLOW


# -- determinism and explanations -----------------------------------------------------------------

_counts = st.integers(min_value=0, max_value=200)
_country = st.sampled_from(["", "US", "GB", "DE", "NG"])


@st.composite
def _inputs(draw: st.DrawFn) -> tuple[Signals, History]:
    s = Signals(
        amount=draw(st.integers(min_value=1, max_value=99_999_999)),
        currency=draw(st.sampled_from(["usd", "eur"])),
        customer_ref=draw(st.sampled_from(["c1", "c2"])),
        card_fingerprint=draw(st.sampled_from(["", "fp1", "fp2"])),
        card_country=draw(_country),
        ip_address=draw(st.sampled_from(["", "10.0.0.1"])),
        ip_country=draw(_country),
        email=draw(st.sampled_from(["", "a@example.com"])),
        shipping_country=draw(_country),
        customer_created_at=draw(st.one_of(st.none(), st.floats(NOW - 1e8, NOW))),
    )
    n = draw(st.integers(min_value=0, max_value=50))
    mean = draw(st.integers(min_value=1, max_value=100_000))
    h = History(
        velocity={
            d: {w: draw(_counts) for w in ("10m", "1h", "24h")}
            for d in ("customer", "card", "ip", "email")
        },
        succeeded_count=n,
        succeeded_sum=n * mean,
        succeeded_sum_sq=n * mean * mean + draw(st.integers(min_value=0, max_value=10**12)),
        distinct_cards_per_customer=draw(_counts),
        distinct_customers_per_card=draw(_counts),
        declines_customer_24h=draw(_counts),
        declines_card_24h=draw(_counts),
        never_retry_declines_card_30d=draw(_counts),
        radar_max_risk_score=draw(st.one_of(st.none(), st.integers(0, 100))),
        radar_elevated=draw(_counts),
    )
    return s, h


@given(_inputs())
def test_the_decision_is_a_deterministic_function_of_its_inputs(
    inputs: tuple[Signals, History],
) -> None:
    s, h = inputs
    model = FraudModel.load(DEFAULT_MODEL_PATH)
    first = assess(model, s, compute_features(s, h, NOW))
    again = assess(FraudModel.load(DEFAULT_MODEL_PATH), s, compute_features(s, h, NOW))
    assert first == again
    # and replaying the recorded features (what the backtest does) gives the same decision
    assert assess(model, s, first.features()) == first


@given(_inputs())
def test_the_explanation_adds_up_to_the_score(inputs: tuple[Signals, History]) -> None:
    s, h = inputs
    a = assess(FraudModel.load(DEFAULT_MODEL_PATH), s, compute_features(s, h, NOW))
    assert {c.name for c in a.contributions} == set(FEATURES)
    for c in a.contributions:
        assert c.contribution == c.weight * c.value
    logit = a.bias + math.fsum(c.contribution for c in a.contributions)
    assert logit == a.logit
    assert logistic(logit) == a.score
    assert 0.0 <= a.score <= 1.0
