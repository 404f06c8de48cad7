"""Refunds, fees, FX and settlement timing through the official SDK."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from stripe_emulator.testing import EmulatorHandle, assert_fixture_keys
from stripe_emulator.tests.payments_helpers import charge_with_bt, event_types, pay

DAY = 86_400


def test_fee_on_domestic_charge_and_settlement(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    pi = pay(client, "pm_card_visa", amount=1000)
    bt = charge_with_bt(client, pi.latest_charge).balance_transaction
    assert (bt.amount, bt.fee, bt.net, bt.currency) == (1000, 59, 941, "usd")  # 29 + 30
    assert bt.type == "charge" and bt.reporting_category == "charge"
    assert bt.exchange_rate is None and bt.fee_details[0].type == "stripe_fee"
    assert bt.status == "pending"
    assert bt.available_on == (bt.created // DAY + 2) * DAY
    assert_fixture_keys(bt, "balance_transaction")
    emu.control.advance(days=1)
    assert charge_with_bt(client, pi.latest_charge).balance_transaction.status == "pending"
    emu.control.advance(days=2)
    assert charge_with_bt(client, pi.latest_charge).balance_transaction.status == "available"


def test_bypass_pending_card_is_available_at_once(client: stripe.StripeClient) -> None:
    pi = pay(client, "pm_card_bypassPending")
    bt = charge_with_bt(client, pi.latest_charge).balance_transaction
    assert bt.status == "available" and bt.available_on <= bt.created


def test_fx_and_international_fees(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    emu.control.configure(fx_rates={"eur": 0.8})  # 1 eur = 1.25 usd
    eur = pay(client, "pm_card_visa", amount=1000, currency="eur")
    bt = charge_with_bt(client, eur.latest_charge).balance_transaction
    # 1250 usd; 2.9% = 36.25, +30, +1% conversion = 12.5 -> 78.75 -> 79
    assert (bt.amount, bt.currency, bt.fee, bt.net) == (1250, "usd", 79, 1171)
    assert bt.exchange_rate == pytest.approx(1.25)
    gb = pay(client, "pm_card_gb", amount=1000, currency="eur")
    bt = charge_with_bt(client, gb.latest_charge).balance_transaction
    # + 1.5% international = 18.75 -> 97.5 -> 98 (half to even)
    assert (bt.amount, bt.fee, bt.net) == (1250, 98, 1152)
    emu.control.configure(pricing={"percent_bp": 250, "fixed": 25, "international_bp": 0})
    usd = pay(client, "pm_card_jp", amount=2000)
    bt = charge_with_bt(client, usd.latest_charge).balance_transaction
    assert (bt.amount, bt.fee, bt.net) == (2000, 75, 1925)  # 50 + 25


def test_partial_refunds_and_over_refund(client: stripe.StripeClient) -> None:
    pi = pay(client, "pm_card_visa", amount=1000, description="mug")
    ch_id = pi.latest_charge
    first = client.v1.refunds.create(
        params={"charge": ch_id, "amount": 300, "reason": "requested_by_customer",
                "metadata": {"ticket": "42"}},
    )  # fmt: skip
    assert first.status == "succeeded" and first.amount == 300 and first.payment_intent == pi.id
    assert_fixture_keys(first, "refund")
    rbt = client.v1.refunds.retrieve(first.id, params={"expand": ["balance_transaction"]})
    bt = rbt.balance_transaction
    assert (bt.amount, bt.fee, bt.net, bt.type, bt.reporting_category) == (
        -300, 0, -300, "refund", "refund",
    )  # fmt: skip
    charge = client.v1.charges.retrieve(ch_id)
    assert charge.amount_refunded == 300 and not charge.refunded
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 800})
    assert err.value.code == "amount_too_large"
    assert "Refund amount ($8.00) is greater than unrefunded amount on charge ($7.00)" in str(
        err.value.user_message
    )
    rest = client.v1.refunds.create(params={"payment_intent": pi.id})
    assert rest.amount == 700
    charge = client.v1.charges.retrieve(ch_id)
    assert charge.amount_refunded == 1000 and charge.refunded
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.refunds.create(params={"charge": ch_id, "amount": 1})
    assert err.value.code == "charge_already_refunded"
    assert [r.id for r in client.v1.refunds.list(params={"charge": ch_id}).data] == [
        rest.id, first.id,
    ]  # fmt: skip
    assert len(client.v1.refunds.list(params={"payment_intent": pi.id}).data) == 2
    assert event_types(client, ch_id) == ["charge.succeeded", "charge.refunded", "charge.refunded"]
    assert event_types(client, first.id) == ["refund.created"]
    updated = client.v1.refunds.update(first.id, params={"metadata": {"ticket": "43"}})
    assert updated.metadata["ticket"] == "43"
    assert event_types(client, first.id)[-1] == "charge.refund.updated"


def test_refund_after_partial_capture(client: stripe.StripeClient) -> None:
    pi = pay(client, "pm_card_visa", amount=1000, capture_method="manual")
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create(params={"charge": pi.latest_charge})
    client.v1.payment_intents.capture(pi.id, params={"amount_to_capture": 600})
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.refunds.create(params={"charge": pi.latest_charge, "amount": 601})
    assert err.value.code == "amount_too_large"
    refund = client.v1.refunds.create(params={"charge": pi.latest_charge})
    assert refund.amount == 600
    assert client.v1.charges.retrieve(pi.latest_charge).refunded


def test_refund_settles_at_todays_rate(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    emu.control.configure(fx_rates={"eur": 0.8})
    pi = pay(client, "pm_card_visa", amount=1000, currency="eur")
    assert charge_with_bt(client, pi.latest_charge).balance_transaction.amount == 1250
    emu.control.configure(fx_rates={"eur": 0.5})  # 1 eur = 2 usd now
    refund = client.v1.refunds.create(params={"payment_intent": pi.id})
    bt = client.v1.refunds.retrieve(
        refund.id, params={"expand": ["balance_transaction"]}
    ).balance_transaction
    assert (bt.amount, bt.currency, bt.fee) == (-2000, "usd", 0)
    assert bt.exchange_rate == pytest.approx(2.0)
    assert refund.amount == 1000 and refund.currency == "eur"


def test_refund_validation(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create(params={"amount": 100})
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.refunds.create(params={"charge": "ch_nope"})
    assert err.value.http_status == 404
    pi = pay(client, "pm_card_visa")
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.refunds.create(params={"payment_intent": pi.id, "reason": "changed_mind"})
    assert err.value.param == "reason"
    with pytest.raises(stripe.CardError) as declined:
        pay(client, "pm_card_chargeDeclined")
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create(params={"charge": declined.value.error.charge})


def test_refund_closes_review_and_disarms_fraud_warning(client: stripe.StripeClient) -> None:
    reviewed = pay(client, "pm_card_riskLevelElevated")
    client.v1.refunds.create(params={"payment_intent": reviewed.id, "amount": 100})
    review = client.v1.reviews.retrieve(reviewed.review)
    assert not review.open and review.closed_reason == "refunded"

    warned = pay(client, "pm_card_createEarlyFraudWarning")
    efws = client.v1.radar.early_fraud_warnings.list(params={"charge": warned.latest_charge})
    assert len(efws.data) == 1 and efws.data[0].actionable
    client.v1.refunds.create(params={"payment_intent": warned.id})
    efw = client.v1.radar.early_fraud_warnings.retrieve(efws.data[0].id)
    assert efw.actionable is False
    assert event_types(client, efw.id) == [
        "radar.early_fraud_warning.created",
        "radar.early_fraud_warning.updated",
    ]


def _fail(emu: EmulatorHandle, refund_id: str, **body: str) -> Any:
    return emu.control.call("POST", f"/_emulator/refunds/{refund_id}/fail", body)


def _balance(client: stripe.StripeClient) -> dict[str, int]:
    b = client.v1.balance.retrieve()
    return {
        bucket: sum(x.amount for x in getattr(b, bucket)) for bucket in ("pending", "available")
    }


def test_a_failed_refund_returns_its_funds_and_is_refundable_again(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    emu.control.configure(fx_rates={"eur": 0.8})
    pi = pay(client, "pm_card_visa", amount=1000, currency="eur")
    before = _balance(client)
    emu.control.configure(fx_rates={"eur": 0.5})  # the refund settles at today's rate
    refund = client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 400})
    assert _balance(client) != before

    failed = _fail(emu, refund.id, failure_reason="expired_or_canceled_card")
    assert (failed["status"], failed["failure_reason"]) == ("failed", "expired_or_canceled_card")
    got = client.v1.refunds.retrieve(
        refund.id, params={"expand": ["balance_transaction", "failure_balance_transaction"]}
    )
    taken, back = got.balance_transaction, got.failure_balance_transaction
    assert (back.type, back.reporting_category, back.source) == (
        "refund_failure", "refund_failure", refund.id
    )  # fmt: skip
    assert (back.amount, back.fee, back.net, back.currency) == (800, 0, 800, "usd")
    assert back.amount == -taken.amount and back.exchange_rate == pytest.approx(2.0)
    assert back.status == "available"
    assert _balance(client) == before  # what the refund took came back
    assert_fixture_keys(got, "refund")

    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert charge.amount_refunded == 0 and not charge.refunded
    assert charge.refunds.data[0].status == "failed"
    assert event_types(client, refund.id) == [
        "refund.created", "refund.updated", "charge.refund.updated", "refund.failed"
    ]  # fmt: skip
    updated = next(
        e for e in client.v1.events.list(params={"type": "charge.refund.updated"}).data
        if e.data.object.id == refund.id
    )  # fmt: skip
    assert updated.data.previous_attributes.to_dict() == {
        "status": "succeeded", "failure_balance_transaction": None, "failure_reason": None
    }  # fmt: skip

    # The whole amount is refundable again; a failed refund cannot fail twice.
    again = client.v1.refunds.create(params={"payment_intent": pi.id})
    assert again.amount == 1000 and again.status == "succeeded"
    with pytest.raises(RuntimeError, match="cannot fail"):
        _fail(emu, refund.id)


def test_failing_a_refund_needs_a_known_refund_and_reason(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    pi = pay(client, "pm_card_visa")
    refund = client.v1.refunds.create(params={"payment_intent": pi.id})
    with pytest.raises(RuntimeError, match="failure_reason must be one of"):
        _fail(emu, refund.id, failure_reason="bored")
    with pytest.raises(RuntimeError, match="No such refund"):
        _fail(emu, "re_nope")
    assert _fail(emu, refund.id)["failure_reason"] == "unknown"
