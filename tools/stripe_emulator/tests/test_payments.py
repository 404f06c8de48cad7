"""PaymentMethods and PaymentIntents through the official SDK: cards, declines, 3DS, capture."""

from __future__ import annotations

import json

import pytest
import stripe

from stripe_emulator.testing import EmulatorHandle, assert_fixture_keys
from stripe_emulator.tests.payments_helpers import charge_with_bt, event_types, pay, three_d_secure

FUTURE = {"exp_month": 12, "exp_year": 2040, "cvc": "123"}


def _card_pm(client: stripe.StripeClient, number: str, **card: str | int) -> stripe.PaymentMethod:
    return client.v1.payment_methods.create(
        params={"type": "card", "card": {"number": number, **FUTURE, **card}}
    )


# -- PaymentMethods -------------------------------------------------------------------------------


def test_payment_method_lifecycle(client: stripe.StripeClient) -> None:
    pm = _card_pm(client, "4242424242424242")
    raw = json.dumps(pm.to_dict())
    assert "4242424242424242" not in raw and '"123"' not in raw
    assert pm.card.last4 == "4242" and pm.card.brand == "visa" and pm.card.country == "US"
    assert pm.customer is None
    assert _card_pm(client, "4242424242424242").card.fingerprint == pm.card.fingerprint
    assert _card_pm(client, "5555555555554444").card.fingerprint != pm.card.fingerprint
    assert client.v1.payment_methods.retrieve(pm.id).id == pm.id

    cus = client.v1.customers.create(params={"email": "pm@example.com"})
    attached = client.v1.payment_methods.attach(pm.id, params={"customer": cus.id})
    assert attached.customer == cus.id
    via_id = client.v1.payment_methods.attach("pm_card_mastercard", params={"customer": cus.id})
    assert via_id.id.startswith("pm_") and via_id.card.brand == "mastercard"
    listed = client.v1.payment_methods.list(params={"customer": cus.id, "type": "card"})
    assert [m.id for m in listed.data] == [via_id.id, pm.id]

    other = client.v1.customers.create(params={"email": "other@example.com"})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_methods.attach(pm.id, params={"customer": other.id})

    updated = client.v1.payment_methods.update(
        pm.id, params={"metadata": {"k": "v"}, "card": {"exp_month": 3}}
    )
    assert updated.metadata["k"] == "v" and updated.card.exp_month == 3

    detached = client.v1.payment_methods.detach(pm.id)
    assert detached.customer is None
    assert [m.id for m in client.v1.payment_methods.list(params={"customer": cus.id}).data] == [
        via_id.id
    ]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_methods.detach(pm.id)
    assert event_types(client, pm.id) == [
        "payment_method.attached",
        "payment_method.updated",
        "payment_method.detached",
    ]
    assert_fixture_keys(pm, "payment_method", nested=("card", "billing_details"))


@pytest.mark.parametrize(
    ("card", "code", "param"),
    [
        ({"number": "4242424242424241"}, "incorrect_number", "card[number]"),
        ({"number": "42424242"}, "invalid_number", "card[number]"),
        ({"exp_year": 2001}, "invalid_expiry_year", "card[exp_year]"),
        ({"exp_month": 13}, "invalid_expiry_month", "card[exp_month]"),
        ({"cvc": "12"}, "invalid_cvc", "card[cvc]"),
    ],
)
def test_card_validation_errors(
    client: stripe.StripeClient, card: dict[str, object], code: str, param: str
) -> None:
    body = {"number": "4242424242424242", **FUTURE, **card}
    with pytest.raises(stripe.CardError) as err:
        client.v1.payment_methods.create(params={"type": "card", "card": body})
    assert err.value.http_status == 402 and err.value.code == code
    assert err.value.param == param
    assert "4242424242424241" not in str(err.value.json_body)


def test_card_token_and_unknown_param(client: stripe.StripeClient) -> None:
    pm = client.v1.payment_methods.create(
        params={"type": "card", "card": {"token": "tok_mastercard"}}
    )
    assert pm.card.brand == "mastercard" and pm.card.last4 == "4444"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_methods.create(
            params={"type": "card", "card": {"token": "tok_visa", "numbr": "1"}}
        )
    assert err.value.param == "card[numbr]"


def test_pm_card_ids_mint_fresh_payment_methods(client: stripe.StripeClient) -> None:
    a = pay(client, "pm_card_visa")
    b = pay(client, "pm_card_visa")
    assert a.payment_method != b.payment_method
    gb = pay(client, "pm_card_gb")
    card = client.v1.charges.retrieve(gb.latest_charge).payment_method_details.card
    assert card.country == "GB" and card.last4 == "0000"
    jp = client.v1.payment_methods.retrieve("pm_card_jp")
    assert jp.card.country == "JP" and jp.id != "pm_card_jp"


def test_payment_method_used_without_customer_cannot_be_reused(
    client: stripe.StripeClient,
) -> None:
    pm = _card_pm(client, "4242424242424242")
    pay(client, pm.id)
    with pytest.raises(stripe.InvalidRequestError) as err:
        pay(client, pm.id)
    assert "may not be used again" in str(err.value.user_message)


# -- PaymentIntent success ------------------------------------------------------------------------


def test_automatic_payment_succeeds(client: stripe.StripeClient) -> None:
    cus = client.v1.customers.create(params={"email": "buyer@example.com"})
    pi = client.v1.payment_intents.create(
        params={"amount": 2000, "currency": "usd", "customer": cus.id, "metadata": {"o": "1"}},
        options={"idempotency_key": "pi-create-1"},
    )
    assert pi.status == "requires_payment_method" and pi.client_secret.startswith(pi.id)
    pi = client.v1.payment_intents.update(pi.id, params={"payment_method": "pm_card_visa"})
    assert pi.status == "requires_confirmation"
    pi = client.v1.payment_intents.confirm(pi.id)
    assert pi.status == "succeeded" and pi.amount_received == 2000
    charge = charge_with_bt(client, pi.latest_charge)
    assert charge.paid and charge.captured and charge.status == "succeeded"
    assert charge.customer == cus.id and charge.payment_intent == pi.id
    assert charge.outcome.type == "authorized" and charge.outcome.risk_level == "normal"
    assert 0 <= charge.outcome.risk_score <= 100
    assert charge.balance_transaction.amount == 2000
    assert event_types(client, pi.id) == ["payment_intent.created", "payment_intent.succeeded"]
    assert event_types(client, charge.id) == ["charge.succeeded"]
    listed = client.v1.payment_intents.list(params={"customer": cus.id})
    assert [p.id for p in listed.data] == [pi.id]
    charges = client.v1.charges.list(params={"payment_intent": pi.id})
    assert [c.id for c in charges.data] == [charge.id]
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_intents.confirm(pi.id)
    assert err.value.code == "payment_intent_unexpected_state"


def test_payment_intent_validation(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_intents.create(params={"amount": 20, "currency": "usd"})
    assert err.value.code == "amount_too_small" and err.value.param == "amount"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_intents.create(params={"amount": 2000, "currency": "usd", "amout": 1})
    assert err.value.param == "amout"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_intents.create(
            params={"amount": 2000, "currency": "usd", "transfer_data": {"destination": "acct_x"}}
        )
    assert err.value.param == "transfer_data[destination]"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_intents.create(
            params={"amount": 2000, "currency": "usd", "application_fee_amount": 100}
        )
    assert err.value.param == "application_fee_amount"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_intents.confirm("pi_missing")
    assert err.value.http_status == 404


# -- declines -------------------------------------------------------------------------------------

DOCUMENTED_DECLINES = [
    ("4000000000000002", "card_declined", "generic_decline"),
    ("4000000000009995", "card_declined", "insufficient_funds"),
    ("4000000000009987", "card_declined", "lost_card"),
    ("4000000000009979", "card_declined", "stolen_card"),
    ("4000000000000069", "expired_card", "expired_card"),
    ("4000000000000127", "incorrect_cvc", "incorrect_cvc"),
    ("4000000000000119", "processing_error", "processing_error"),
    ("4000000000006975", "card_declined", "card_velocity_exceeded"),
    ("4000000000000341", "card_declined", "generic_decline"),
]


@pytest.mark.parametrize(("number", "code", "decline_code"), DOCUMENTED_DECLINES)
def test_documented_decline_cards(
    client: stripe.StripeClient, number: str, code: str, decline_code: str
) -> None:
    pm = _card_pm(client, number)
    with pytest.raises(stripe.CardError) as err:
        pay(client, pm.id)
    e = err.value
    assert e.http_status == 402 and e.code == code and e.error.decline_code == decline_code
    assert e.error.payment_intent.status == "requires_payment_method"
    assert e.error.payment_intent.last_payment_error.decline_code == decline_code
    charge = client.v1.charges.retrieve(e.error.charge)
    assert charge.status == "failed" and not charge.paid and charge.balance_transaction is None
    assert charge.failure_code == code
    assert charge.outcome.type == "issuer_declined"
    assert charge.outcome.network_status == "declined_by_network"
    pi = client.v1.payment_intents.retrieve(e.error.payment_intent.id)
    assert pi.latest_charge == charge.id and pi.payment_method is None
    assert event_types(client, pi.id) == ["payment_intent.created", "payment_intent.payment_failed"]
    assert event_types(client, charge.id) == ["charge.failed"]


PM_DECLINES = [
    ("pm_card_chargeDeclined", "generic_decline"),
    ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"),
    ("pm_card_chargeDeclinedLostCard", "lost_card"),
    ("pm_card_visa_chargeDeclinedLostCard", "lost_card"),
    ("pm_card_chargeDeclinedStolenCard", "stolen_card"),
    ("pm_card_chargeDeclinedExpiredCard", "expired_card"),
    ("pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc"),
    ("pm_card_chargeDeclinedProcessingError", "processing_error"),
    ("pm_card_visa_chargeDeclinedVelocityLimitExceeded", "card_velocity_exceeded"),
] + [
    (f"pm_card_declined_{code}", code)
    for code in (
        "try_again_later issuer_not_available reenter_transaction withdrawal_count_limit_exceeded "
        "call_issuer do_not_honor card_not_supported currency_not_supported pickup_card "
        "fraudulent merchant_blacklist security_violation revocation_of_authorization "
        "do_not_try_again incorrect_number"
    ).split()
]


@pytest.mark.parametrize(("pm", "decline_code"), PM_DECLINES)
def test_decline_codes_by_payment_method_id(
    client: stripe.StripeClient, pm: str, decline_code: str
) -> None:
    with pytest.raises(stripe.CardError) as err:
        pay(client, pm)
    assert err.value.error.decline_code == decline_code
    assert err.value.error.payment_intent.last_payment_error.type == "card_error"


def test_decline_then_retry_with_other_card(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    with pytest.raises(stripe.CardError) as err:
        client.v1.payment_intents.create(
            params={"amount": 1500, "currency": "usd", "confirm": True,
                    "payment_method": "pm_card_chargeDeclinedInsufficientFunds"},
            options={"idempotency_key": "decline-1"},
        )  # fmt: skip
    pi_id = err.value.error.payment_intent.id
    assert err.value.error.advice_code == "try_again_later"
    with pytest.raises(stripe.CardError) as replay:
        client.v1.payment_intents.create(
            params={"amount": 1500, "currency": "usd", "confirm": True,
                    "payment_method": "pm_card_chargeDeclinedInsufficientFunds"},
            options={"idempotency_key": "decline-1"},
        )  # fmt: skip
    assert replay.value.error.payment_intent.id == pi_id
    assert [e["replayed"] for e in emu.control.requests(idempotency_key="decline-1")] == [
        False,
        True,
    ]
    pi = client.v1.payment_intents.confirm(pi_id, params={"payment_method": "pm_card_visa"})
    assert pi.status == "succeeded" and pi.last_payment_error is None
    assert len(client.v1.charges.list(params={"payment_intent": pi_id}).data) == 2


# -- Radar ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("pm", ["pm_card_radarBlock", "pm_card_riskLevelHighest"])
def test_radar_blocks_highest_risk(client: stripe.StripeClient, pm: str) -> None:
    with pytest.raises(stripe.CardError) as err:
        pay(client, pm)
    assert err.value.code == "card_declined" and err.value.error.decline_code == "fraudulent"
    charge = client.v1.charges.retrieve(err.value.error.charge)
    assert charge.outcome.type == "blocked"
    assert charge.outcome.risk_level == "highest" and charge.outcome.reason == "highest_risk_level"
    assert charge.outcome.network_status == "not_sent_to_network"


def test_radar_block_by_card_number(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.CardError) as err:
        pay(client, _card_pm(client, "4100000000000019").id)
    assert client.v1.charges.retrieve(err.value.error.charge).outcome.type == "blocked"


def test_elevated_risk_opens_review(client: stripe.StripeClient) -> None:
    pi = pay(client, "pm_card_riskLevelElevated")
    assert pi.status == "succeeded" and pi.review is not None
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert charge.outcome.type == "manual_review" and charge.outcome.risk_level == "elevated"
    assert charge.review == pi.review
    review = client.v1.reviews.retrieve(pi.review)
    assert review.open and review.charge == charge.id and review.reason == "rule"
    assert_fixture_keys(review, "review")
    assert [r.id for r in client.v1.reviews.list().data] == [review.id]
    closed = client.v1.reviews.approve(review.id)
    assert not closed.open and closed.reason == "approved" and closed.closed_reason == "approved"
    assert event_types(client, review.id) == ["review.opened", "review.closed"]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.reviews.approve(review.id)


# -- 3D Secure ------------------------------------------------------------------------------------


@pytest.mark.parametrize("pm", ["pm_card_threeDSecure2Required", "pm_card_threeDSecureRequired"])
def test_three_d_secure_pass(emu: EmulatorHandle, client: stripe.StripeClient, pm: str) -> None:
    pi = pay(client, pm)
    assert pi.status == "requires_action" and pi.next_action.type == "use_stripe_sdk"
    assert pi.latest_charge is None
    done = three_d_secure(emu, pi.id, "pass")
    assert done["status"] == "succeeded"
    pi = client.v1.payment_intents.retrieve(pi.id)
    assert pi.status == "succeeded" and pi.next_action is None
    tds = client.v1.charges.retrieve(pi.latest_charge).payment_method_details.card.three_d_secure
    assert tds.result == "authenticated"
    assert event_types(client, pi.id) == [
        "payment_intent.created",
        "payment_intent.requires_action",
        "payment_intent.succeeded",
    ]


def test_three_d_secure_fail_then_new_card(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    pm = _card_pm(client, "4000000000003220")
    pi = pay(client, pm.id, return_url="https://shop.example/return")
    assert pi.next_action.type == "redirect_to_url"
    assert pi.next_action.redirect_to_url.return_url == "https://shop.example/return"
    three_d_secure(emu, pi.id, "fail")
    pi = client.v1.payment_intents.retrieve(pi.id)
    assert pi.status == "requires_payment_method"
    assert pi.last_payment_error.code == "payment_intent_authentication_failure"
    assert pi.latest_charge is None
    pi = client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})
    assert pi.status == "succeeded"


def test_request_three_d_secure_any_challenges_plain_card(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    pi = pay(
        client, "pm_card_visa",
        payment_method_options={"card": {"request_three_d_secure": "challenge"}},
    )  # fmt: skip
    assert pi.status == "requires_action"
    automatic = pay(client, "pm_card_visa")
    assert automatic.status == "succeeded"


def test_three_d_secure_off_session_and_decline_after_auth(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    with pytest.raises(stripe.CardError) as err:
        pay(client, "pm_card_authenticationRequired", off_session=True)
    assert err.value.code == "authentication_required"
    assert err.value.error.decline_code == "authentication_required"
    pi = pay(client, "pm_card_authenticationRequiredChargeDeclinedInsufficientFunds")
    result = three_d_secure(emu, pi.id, "pass")
    assert result["status"] == "requires_payment_method"
    assert result["last_payment_error"]["decline_code"] == "insufficient_funds"
    with pytest.raises(RuntimeError):
        three_d_secure(emu, pi.id, "pass")


# -- manual capture -------------------------------------------------------------------------------


def test_manual_capture_partial(client: stripe.StripeClient) -> None:
    pi = pay(client, "pm_card_visa", amount=1000, capture_method="manual")
    assert pi.status == "requires_capture" and pi.amount_capturable == 1000
    assert pi.amount_received == 0
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert charge.paid and not charge.captured and charge.balance_transaction is None
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_intents.capture(pi.id, params={"amount_to_capture": 1001})
    assert err.value.code == "amount_too_large"
    pi = client.v1.payment_intents.capture(pi.id, params={"amount_to_capture": 600})
    assert pi.status == "succeeded" and pi.amount_received == 600 and pi.amount_capturable == 0
    charge = charge_with_bt(client, pi.latest_charge)
    assert charge.captured and charge.amount_captured == 600 and charge.amount_refunded == 400
    assert not charge.refunded
    bt = charge.balance_transaction
    assert (bt.amount, bt.fee, bt.net) == (600, 47, 553)  # 2.9% of 600 = 17.4, + 30
    assert event_types(client, pi.id)[-2:] == [
        "payment_intent.amount_capturable_updated",
        "payment_intent.succeeded",
    ]
    assert event_types(client, charge.id) == ["charge.succeeded", "charge.captured"]
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_intents.capture(pi.id)
    assert err.value.code == "payment_intent_unexpected_state"


def test_capture_through_charges_endpoint(client: stripe.StripeClient) -> None:
    pi = pay(client, "pm_card_mastercard", amount=5000, capture_method="manual")
    charge = client.v1.charges.capture(pi.latest_charge)
    assert charge.captured and charge.amount_captured == 5000 and charge.amount_refunded == 0
    assert client.v1.payment_intents.retrieve(pi.id).status == "succeeded"


def test_uncaptured_authorization_expires(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    pi = pay(client, "pm_card_visa", capture_method="manual")
    emu.control.advance(days=6)
    assert client.v1.payment_intents.retrieve(pi.id).status == "requires_capture"
    emu.control.advance(days=1, seconds=5)
    pi = client.v1.payment_intents.retrieve(pi.id)
    assert pi.status == "canceled" and pi.cancellation_reason == "automatic"
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert charge.refunded and not charge.captured and charge.balance_transaction is None
    assert "charge.expired" in event_types(client, charge.id)


def test_cancel(client: stripe.StripeClient) -> None:
    pi = client.v1.payment_intents.create(params={"amount": 900, "currency": "eur"})
    canceled = client.v1.payment_intents.cancel(
        pi.id, params={"cancellation_reason": "requested_by_customer"}
    )
    assert canceled.status == "canceled" and canceled.canceled_at is not None
    assert canceled.cancellation_reason == "requested_by_customer"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_intents.cancel(pi.id)
    assert err.value.code == "payment_intent_unexpected_state"
    held = pay(client, "pm_card_visa", capture_method="manual")
    client.v1.payment_intents.cancel(held.id, params={"cancellation_reason": "abandoned"})
    assert client.v1.charges.retrieve(held.latest_charge).amount_refunded == 1000
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_intents.cancel(held.id, params={"cancellation_reason": "bored"})
    assert err.value.param == "cancellation_reason"


def test_update_rules(client: stripe.StripeClient) -> None:
    pi = client.v1.payment_intents.create(params={"amount": 900, "currency": "usd"})
    pi = client.v1.payment_intents.update(
        pi.id, params={"amount": 1200, "description": "order 7", "metadata": {"a": "b"}}
    )
    assert (pi.amount, pi.description, pi.metadata["a"]) == (1200, "order 7", "b")
    pi = client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_amex"})
    assert pi.status == "succeeded"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_intents.update(pi.id, params={"amount": 5000})
    assert err.value.code == "payment_intent_unexpected_state"
    meta = client.v1.payment_intents.update(pi.id, params={"metadata": {"shipped": "yes"}})
    assert meta.metadata["shipped"] == "yes"


def test_setup_future_usage_attaches_payment_method(client: stripe.StripeClient) -> None:
    cus = client.v1.customers.create(params={"email": "sfu@example.com"})
    pi = pay(client, "pm_card_visa", customer=cus.id, setup_future_usage="off_session")
    assert client.v1.payment_methods.retrieve(pi.payment_method).customer == cus.id
    again = pay(client, pi.payment_method, customer=cus.id, off_session=True)
    assert again.status == "succeeded"
    with pytest.raises(stripe.InvalidRequestError):
        pay(client, pi.payment_method)


def test_objects_carry_stripe_keys(client: stripe.StripeClient) -> None:
    pi = pay(client, "pm_card_visa")
    assert_fixture_keys(pi, "payment_intent")
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert_fixture_keys(charge, "charge", nested=("outcome", "billing_details", "refunds"))
    card_keys = set(charge.payment_method_details.card.to_dict())
    assert {"brand", "checks", "country", "exp_month", "exp_year", "fingerprint", "funding",
            "last4", "network", "three_d_secure"} <= card_keys  # fmt: skip
    assert_fixture_keys(client.v1.payment_methods.retrieve(pi.payment_method), "payment_method")
    with pytest.raises(stripe.CardError) as err:
        pay(client, "pm_card_chargeDeclined")
    assert_fixture_keys(err.value.error.payment_intent, "payment_intent")
    assert_fixture_keys(client.v1.charges.retrieve(err.value.error.charge), "charge",
                        nested=("outcome",))  # fmt: skip


def test_charge_update_and_list(client: stripe.StripeClient) -> None:
    cus = client.v1.customers.create(params={"email": "c@example.com"})
    pi = pay(client, "pm_card_visa", customer=cus.id)
    charge = client.v1.charges.update(
        pi.latest_charge,
        params={"description": "desk", "metadata": {"x": "1"},
                "fraud_details": {"user_report": "safe"}},
    )  # fmt: skip
    assert charge.description == "desk" and charge.fraud_details.user_report == "safe"
    assert "charge.updated" in event_types(client, charge.id)
    pay(client, "pm_card_visa")
    assert [c.id for c in client.v1.charges.list(params={"customer": cus.id}).data] == [charge.id]
    assert len(client.v1.charges.list().data) == 2
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.charges.update(charge.id, params={"amount": 5})
    assert err.value.param == "amount"
