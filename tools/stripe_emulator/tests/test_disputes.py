"""Disputes, early fraud warnings and destination charges through the official SDK."""

from __future__ import annotations

import importlib.util

import pytest
import stripe

from stripe_emulator.testing import EmulatorHandle, assert_fixture_keys
from stripe_emulator.tests.payments_helpers import charge_with_bt, close_dispute, event_types, pay


def _dispute_of(client: stripe.StripeClient, charge_id: str) -> stripe.Dispute:
    disputes = client.v1.disputes.list(params={"charge": charge_id}).data
    assert len(disputes) == 1
    return disputes[0]


def test_dispute_opened_by_test_card(client: stripe.StripeClient) -> None:
    pi = pay(client, "pm_card_createDispute", amount=1000)
    assert pi.status == "succeeded"
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert charge.disputed
    dp = _dispute_of(client, charge.id)
    assert dp.status == "needs_response" and dp.reason == "fraudulent"
    assert dp.amount == 1000 and dp.payment_intent == pi.id
    assert dp.evidence_details.due_by > charge.created
    assert_fixture_keys(dp, "dispute", nested=("evidence", "evidence_details"))
    [bt] = dp.balance_transactions
    assert (bt.type, bt.reporting_category) == ("adjustment", "dispute")
    assert (bt.amount, bt.fee, bt.net) == (-1000, 1500, -2500)
    assert bt.fee_details[0].description == "Dispute fee"
    assert event_types(client, dp.id) == [
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
    ]
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.refunds.create(params={"charge": charge.id})
    assert err.value.code == "charge_disputed"


def test_dispute_won_reinstates_amount_and_fee(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    pi = pay(client, _card_pm(client, "4000000000000259"), amount=2500)
    dp = _dispute_of(client, pi.latest_charge)
    dp = client.v1.disputes.update(
        dp.id,
        params={"evidence": {"uncategorized_text": "signed delivery", "customer_name": "Ada"},
                "metadata": {"case": "7"}},
    )  # fmt: skip
    assert dp.status == "under_review" and dp.evidence_details.submission_count == 1
    assert dp.evidence.customer_name == "Ada" and dp.metadata["case"] == "7"
    won = close_dispute(emu, dp.id, "won")
    assert won["status"] == "won"
    dp = client.v1.disputes.retrieve(dp.id)
    debit, credit = dp.balance_transactions
    assert (credit.type, credit.reporting_category) == ("adjustment", "dispute_reversal")
    assert (credit.amount, credit.fee, credit.net) == (2500, -1500, 4000)
    assert debit.net + credit.net == 0
    assert event_types(client, dp.id) == [
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.updated",
        "charge.dispute.funds_reinstated",
        "charge.dispute.closed",
    ]
    with pytest.raises(RuntimeError):
        close_dispute(emu, dp.id, "lost")


def _card_pm(client: stripe.StripeClient, number: str) -> str:
    return client.v1.payment_methods.create(
        params={"type": "card",
                "card": {"number": number, "exp_month": 1, "exp_year": 2045, "cvc": "999"}}
    ).id  # fmt: skip


def test_dispute_lost_by_accepting(client: stripe.StripeClient) -> None:
    pi = pay(client, "pm_card_createDisputeProductNotReceived", amount=4000)
    dp = _dispute_of(client, pi.latest_charge)
    assert dp.reason == "product_not_received"
    closed = client.v1.disputes.close(dp.id)
    assert closed.status == "lost" and len(closed.balance_transactions) == 1
    assert event_types(client, dp.id)[-1] == "charge.dispute.closed"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.disputes.close(dp.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.disputes.update(dp.id, params={"evidence": {"receipt": "file_1"}})


def test_emulator_lost_dispute_and_fx(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    emu.control.configure(fx_rates={"eur": 0.8})
    pi = pay(client, "pm_card_createDispute", amount=1000, currency="eur")
    charge = charge_with_bt(client, pi.latest_charge)
    assert charge.balance_transaction.amount == 1250
    dp = _dispute_of(client, charge.id)
    assert dp.currency == "eur" and dp.amount == 1000
    [bt] = dp.balance_transactions
    assert (bt.amount, bt.currency, bt.net) == (-1250, "usd", -2750)
    assert close_dispute(emu, dp.id, "lost")["status"] == "lost"
    assert len(client.v1.disputes.list(params={"payment_intent": pi.id}).data) == 1


def test_manual_capture_dispute_waits_for_capture(client: stripe.StripeClient) -> None:
    pi = pay(client, "pm_card_createDispute", capture_method="manual")
    assert client.v1.disputes.list(params={"charge": pi.latest_charge}).data == []
    client.v1.payment_intents.capture(pi.id, params={"amount_to_capture": 700})
    assert _dispute_of(client, pi.latest_charge).amount == 700


def test_early_fraud_warning(client: stripe.StripeClient) -> None:
    pi = pay(client, "pm_card_createEarlyFraudWarning")
    [efw] = client.v1.radar.early_fraud_warnings.list(params={"charge": pi.latest_charge}).data
    assert efw.actionable and efw.charge == pi.latest_charge and efw.payment_intent == pi.id
    assert efw.fraud_type == "made_with_stolen_card"
    assert_fixture_keys(efw, "radar.early_fraud_warning")
    assert client.v1.radar.early_fraud_warnings.retrieve(efw.id).id == efw.id
    pay(client, "pm_card_visa")
    assert len(client.v1.radar.early_fraud_warnings.list().data) == 1
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.radar.early_fraud_warnings.retrieve("issfr_missing")
    assert err.value.http_status == 404


@pytest.mark.skipif(
    importlib.util.find_spec("stripe_emulator.resources.transfers") is None
    or importlib.util.find_spec("stripe_emulator.resources.connect") is None,
    reason="destination charges need the connect and transfers modules (money-movement group)",
)
def test_destination_charge_and_refund_with_reversal(client: stripe.StripeClient) -> None:
    acct = client.v1.accounts.create(
        params={"type": "express", "country": "US", "email": "seller@example.com"}
    )
    pi = pay(
        client, "pm_card_visa", amount=10000,
        transfer_data={"destination": acct.id}, application_fee_amount=1000,
        transfer_group="order-9",
    )  # fmt: skip
    assert pi.status == "succeeded" and pi.transfer_data.destination == acct.id
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert charge.transfer_data.destination == acct.id and charge.transfer_group == "order-9"
    assert charge.transfer is not None
    refund = client.v1.refunds.create(
        params={"charge": charge.id, "reverse_transfer": True, "refund_application_fee": True}
    )
    assert refund.amount == 10000
    assert client.v1.refunds.retrieve(refund.id).transfer_reversal is not None
