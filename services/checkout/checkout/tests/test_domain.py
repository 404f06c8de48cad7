from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from checkout.domain.declines import Advice, advice_for
from checkout.domain.payment import (
    CaptureMethod,
    Payment,
    Status,
    status_from_stripe,
    validate_new_payment,
)


def _payment() -> Payment:
    return Payment("pay_1", 1000, "usd", "c1", "pm_card_visa", CaptureMethod.AUTOMATIC)


def test_late_events_never_move_a_payment_backwards() -> None:
    p = _payment()
    assert p.observe(Status.SUCCEEDED)
    assert not p.observe(Status.REQUIRES_ACTION)
    assert not p.observe(Status.PROCESSING)
    assert not p.observe(Status.FAILED)
    assert p.status is Status.SUCCEEDED


def test_manual_capture_moves_from_requires_capture_to_succeeded() -> None:
    p = _payment()
    assert p.observe(Status.REQUIRES_CAPTURE)
    assert p.observe(Status.SUCCEEDED)


@given(st.permutations([Status.REQUIRES_ACTION, Status.PROCESSING, Status.SUCCEEDED]))
def test_any_order_of_a_successful_history_ends_succeeded(order: list[Status]) -> None:
    p = _payment()
    for status in itertools.chain(order, order):  # shuffled and duplicated
        p.observe(status)
    assert p.status is Status.SUCCEEDED


def test_stripe_statuses_map() -> None:
    assert status_from_stripe("requires_payment_method", had_error=True) is Status.FAILED
    assert status_from_stripe("requires_payment_method") is Status.PENDING
    assert status_from_stripe("requires_capture") is Status.REQUIRES_CAPTURE


def test_refundable_only_after_success() -> None:
    p = _payment()
    assert p.refundable == 0
    p.observe(Status.SUCCEEDED)
    p.amount_refunded = 300
    assert p.refundable == 700


def test_validation_names_each_bad_field() -> None:
    problems = validate_new_payment(0, "xyz", "", {"k" * 41: "v"})
    joined = " ".join(problems)
    for field in ("amount.amount_minor", "amount.currency", "payment_method", "metadata"):
        assert field in joined
    assert validate_new_payment(100, "usd", "pm_card_visa", {}) == []


def test_decline_advice_follows_the_table() -> None:
    assert advice_for("insufficient_funds") is Advice.MAYBE_LATER
    assert advice_for("stolen_card") is Advice.NEVER
    assert advice_for("processing_error") is Advice.RETRY_LATER
    assert advice_for("incorrect_cvc") is Advice.CUSTOMER_ACTION
    assert advice_for(None, "expired_card") is Advice.CUSTOMER_ACTION
