"""Labels from the platform's outcomes, the handbook's metrics and protocol, and the
verification step."""

from __future__ import annotations

import math

import numpy as np
import pytest

from checkout.fraud.entity_state import DAY, StateConfig
from checkout.fraud.facts import PaymentFacts
from checkout.fraud.labels import Label, Outcome, labels_from_outcomes, training_label
from checkout.fraud.metrics import auc_roc, average_precision, card_precision_at_k, protocol_mask
from checkout.fraud.pipeline import FeaturePipeline
from checkout.fraud.verify import RadarSignal, Verdict, verify

T0 = 1_525_132_800.0
CFG = StateConfig(delay_days=7, maturity_days=7)

# -- labels ------------------------------------------------------------------------------------


def test_labels_from_outcomes() -> None:
    outcomes = [
        Outcome("p1", "dispute", "product_not_received", 10.0),  # not fraud
        Outcome("p1", "dispute", "fraudulent", 50.0),
        Outcome("p1", "early_fraud_warning", "made_with_stolen_card", 20.0),  # earlier
        Outcome("p2", "dispute", "unrecognized", 30.0),
        Outcome("p3", "review", "rejected", 40.0),
        Outcome("p4", "review", "rejected", 40.0, automatic=True),  # policy, not a verdict
        Outcome("p5", "review", "approved", 40.0),
        Outcome("p6", "refund", "fraudulent", 60.0, ref="ref_efw_abc"),  # EFW auto-refund
        Outcome("p7", "refund", "fraudulent", 60.0, ref="ref_radar_abc"),  # Radar's block
        Outcome("p8", "refund", "requested_by_customer", 60.0, ref="re_1"),
    ]
    got = labels_from_outcomes(outcomes)
    assert got == {
        "p1": Label("p1", 20.0, "early_fraud_warning:made_with_stolen_card"),
        "p2": Label("p2", 30.0, "dispute:unrecognized"),
        "p3": Label("p3", 40.0, "review:rejected"),
        "p6": Label("p6", 60.0, "refund:fraudulent"),
    }


def test_training_label_waits_for_maturity() -> None:
    label = Label("p", T0 + 3 * DAY, "dispute:fraudulent")
    assert training_label(T0, label, T0 + 2 * DAY, 7) is None  # neither known nor mature
    assert training_label(T0, label, T0 + 3 * DAY, 7) == 1  # known at its time
    assert training_label(T0, None, T0 + 7 * DAY - 1, 7) is None
    assert training_label(T0, None, T0 + 7 * DAY, 7) == 0  # matured without a report


# -- metrics -----------------------------------------------------------------------------------


def test_auc_and_average_precision_on_known_cases() -> None:
    y = np.array([0, 0, 1, 1], dtype=np.int8)
    s = np.array([0.1, 0.4, 0.35, 0.8])
    assert auc_roc(y, s) == pytest.approx(0.75)
    # scikit-learn's value for the same input: (1/2)*1 + (1/2)*(2/3)
    assert average_precision(y, s) == pytest.approx(0.8333333333)
    assert auc_roc(y, np.array([0.5, 0.5, 0.5, 0.5])) == pytest.approx(0.5)
    assert average_precision(y, np.array([0.5, 0.5, 0.5, 0.5])) == pytest.approx(0.5)
    assert math.isnan(auc_roc(np.zeros(3, dtype=np.int8), np.arange(3.0)))


def test_card_precision_takes_each_cards_best_and_drops_cards_caught_before() -> None:
    days = np.array([1, 1, 1, 1, 2, 2, 2], dtype=np.int64)
    cards = ["a", "a", "b", "c", "a", "b", "c"]
    y = np.array([0, 1, 0, 0, 1, 0, 1], dtype=np.int8)
    s = np.array([0.9, 0.1, 0.8, 0.2, 0.99, 0.5, 0.4])
    # day 1: a (0.9, frauded) and b in the top 2 -> 1/2; day 2: a was caught, so b and c -> 1/2
    assert card_precision_at_k(days, cards, y, s, k=2) == pytest.approx(0.5)


def test_known_compromised_cards_leave_the_test_set() -> None:
    days = np.array([20, 20, 21, 21], dtype=np.int64)
    cards = ["a", "b", "a", "b"]
    fraud_by_day = {10: {"a"}, 13: {"b"}}
    keep = protocol_mask(days, cards, fraud_by_day, train_first_day=5, delay_days=7)
    # day 20 knows frauds up to day 12 (a); day 21 up to day 13 (a, b)
    assert keep.tolist() == [False, True, False, False]


# -- verification ------------------------------------------------------------------------------


def _facts(i: int, at: float, **kw: object) -> PaymentFacts:
    base: dict[str, object] = {
        "payment_id": f"p{i}",
        "at": at,
        "amount": 2_000,
        "currency": "usd",
        "customer": "c1",
        "card": "fp1",
        "email": "a@example.com",
        "shipping": "1 high st",
        "seller": "s1",
        "card_country": "US",
        "ip_country": "US",
        "shipping_country": "US",
    }
    base.update(kw)
    return PaymentFacts(**base)


def _history(p: FeaturePipeline, n: int = 8) -> None:
    for i in range(n):  # a steady customer, matured weeks ago
        p.record(_facts(i, T0 + i * DAY, amount=2_000 + 10 * i))


NOW = T0 + 30 * DAY


def test_a_good_customer_in_line_is_approved() -> None:
    p = FeaturePipeline(config=CFG)
    _history(p)
    v = verify(f := _facts(99, NOW), p.evidence(f))
    assert v.verdict is Verdict.APPROVE
    assert v.reasons[0] == "payer_good_history:8"


def test_a_good_customer_with_a_new_address_or_a_big_amount_is_challenged() -> None:
    p = FeaturePipeline(config=CFG)
    _history(p)
    f = _facts(99, NOW, shipping="9 far away rd")
    v = verify(f, p.evidence(f))
    assert v.verdict is Verdict.CHALLENGE and "new_pair:card->shipping" in v.reasons
    f = _facts(100, NOW, amount=20_000)
    v = verify(f, p.evidence(f))
    assert v.verdict is Verdict.CHALLENGE and any(r.startswith("amount_") for r in v.reasons)


def test_known_fraud_or_a_seller_in_a_fraud_run_or_radar_is_rejected() -> None:
    p = FeaturePipeline(config=CFG)
    _history(p)
    bad = _facts(50, T0 + 10 * DAY, email="thief@example.com")
    p.record(bad)
    p.label(bad)
    f = _facts(99, NOW, email="thief@example.com")
    v = verify(f, p.evidence(f))
    assert v.verdict is Verdict.REJECT and "email_known_fraud:1" in v.reasons
    # a seller whose lagged payments were all fraud
    q = FeaturePipeline(config=CFG)
    for i in range(3):
        s = _facts(
            i,
            T0 + (10 + i) * DAY,
            customer=f"x{i}",
            card=f"x{i}",
            seller="s7",
            email=f"x{i}@example.com",
            shipping=f"{i} x st",
        )
        q.record(s)
        q.label(s)
    f = _facts(99, NOW, customer="new", card="new", seller="s7")
    v = verify(f, q.evidence(f))
    assert v.verdict is Verdict.REJECT and v.reasons[0].startswith("seller_fraud_run:3")
    f = _facts(99, NOW)
    v = verify(f, FeaturePipeline(config=CFG).evidence(f), RadarSignal("highest", "authorized"))
    assert v.verdict is Verdict.REJECT and v.reasons == ("radar:highest/authorized",)


def test_a_card_with_a_fraud_label_is_challenged_after_a_long_good_record() -> None:
    p = FeaturePipeline(config=CFG)
    _history(p)  # eight good payments, matured
    stolen = _facts(50, T0 + 20 * DAY, amount=10_000, email="", shipping="")
    p.record(stolen)
    p.label(stolen)
    f = _facts(99, NOW)
    v = verify(f, p.evidence(f))
    assert v.verdict is Verdict.CHALLENGE
    assert v.reasons == ("card_known_fraud:1", "customer_known_fraud:1", "payer_good_history:8")
    # the same label on a card without that record: rejected
    q = FeaturePipeline(config=CFG)
    _history(q, n=2)
    q.record(stolen)
    q.label(stolen)
    v = verify(f, q.evidence(f))
    assert v.verdict is Verdict.REJECT and v.reasons[0] == "card_known_fraud:1"


def test_inconclusive_goes_to_a_human() -> None:
    p = FeaturePipeline(config=CFG)
    f = _facts(1, NOW)
    v = verify(f, p.evidence(f))  # never seen: nothing to go on
    assert v.verdict is Verdict.HUMAN and v.reasons == ("payer_history_short:0<5",)
    _history(p)
    f = _facts(99, NOW, ip_country="NG")  # good history, but the countries disagree
    v = verify(f, p.evidence(f))
    assert v.verdict is Verdict.HUMAN and "country_mismatch:card_ip_country" in v.reasons
    v = verify(_facts(99, NOW), p.evidence(_facts(99, NOW)), RadarSignal("elevated", ""))
    assert v.verdict is Verdict.HUMAN and "radar:elevated" in v.reasons


def test_verification_is_deterministic_for_the_same_facts() -> None:
    def build() -> FeaturePipeline:
        p = FeaturePipeline(config=CFG)
        _history(p)
        return p

    for kw in ({}, {"shipping": "new"}, {"amount": 90_000}, {"ip_country": "NG"}):
        f = _facts(99, NOW, **kw)
        first = verify(f, build().evidence(f))
        for _ in range(3):
            assert verify(f, build().evidence(f)) == first
