from __future__ import annotations

import pytest
import stripe

from stripe_emulator.testing import EmulatorHandle, assert_fixture_keys
from stripe_emulator.tests.payments_helpers import event_types


def _three_d_secure(emu: EmulatorHandle, seti: str, outcome: str) -> None:
    emu.control.call(
        "POST", f"/_emulator/setup_intents/{seti}/three_d_secure", {"outcome": outcome}
    )


def test_setup_saves_a_card_for_off_session_use(client: stripe.StripeClient) -> None:
    cus = client.v1.customers.create(params={"email": "s@example.com"})
    si = client.v1.setup_intents.create(
        params={
            "customer": cus.id,
            "payment_method": "pm_card_visa",
            "confirm": True,
            "usage": "off_session",
            "metadata": {"k": "v"},
        }
    )
    assert_fixture_keys(si, "setup_intent")
    assert si.status == "succeeded" and si.usage == "off_session"
    pm = client.v1.payment_methods.retrieve(si.payment_method)
    assert pm.customer == cus.id
    (attempt,) = client.v1.setup_attempts.list(params={"setup_intent": si.id}).data
    assert_fixture_keys(attempt, "setup_attempt")
    assert attempt.id == si.latest_attempt and attempt.status == "succeeded"
    assert event_types(client, si.id) == ["setup_intent.created", "setup_intent.succeeded"]
    assert [s.id for s in client.v1.setup_intents.list(params={"customer": cus.id}).data] == [si.id]


def test_three_d_secure_on_setup_then_off_session_without_it(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    cus = client.v1.customers.create()
    si = client.v1.setup_intents.create(
        params={
            "customer": cus.id,
            "confirm": True,
            "payment_method": "pm_card_authenticationRequiredOnSetup",
        }
    )
    assert si.status == "requires_action" and si.next_action.type == "use_stripe_sdk"
    _three_d_secure(emu, si.id, "pass")
    done = client.v1.setup_intents.retrieve(si.id)
    assert done.status == "succeeded"
    pi = client.v1.payment_intents.create(
        params={
            "amount": 2000,
            "currency": "usd",
            "customer": cus.id,
            "confirm": True,
            "payment_method": done.payment_method,
            "off_session": True,
        }
    )
    assert pi.status == "succeeded"
    # a card that always asks for authentication still declines off-session
    always = client.v1.payment_methods.attach(
        "pm_card_authenticationRequired", params={"customer": cus.id}
    )
    with pytest.raises(stripe.CardError) as err:
        client.v1.payment_intents.create(
            params={
                "amount": 2000,
                "currency": "usd",
                "customer": cus.id,
                "confirm": True,
                "payment_method": always.id,
                "off_session": True,
            }
        )
    assert err.value.code == "authentication_required"

    failing = client.v1.setup_intents.create(
        params={
            "customer": cus.id,
            "confirm": True,
            "payment_method": "pm_card_threeDSecure2Required",
        }
    )
    _three_d_secure(emu, failing.id, "fail")
    failed = client.v1.setup_intents.retrieve(failing.id)
    assert failed.status == "requires_payment_method"
    assert failed.last_setup_error.code == "setup_intent_authentication_failure"


def test_declined_card_fails_setup_and_cancel(client: stripe.StripeClient) -> None:
    cus = client.v1.customers.create()
    si = client.v1.setup_intents.create(params={"customer": cus.id})
    assert si.status == "requires_payment_method"
    with pytest.raises(stripe.CardError) as err:
        client.v1.setup_intents.confirm(si.id, params={"payment_method": "pm_card_chargeDeclined"})
    assert err.value.http_status == 402 and err.value.code == "card_declined"
    failed = client.v1.setup_intents.retrieve(si.id)
    assert failed.status == "requires_payment_method"
    assert failed.last_setup_error.decline_code == "generic_decline"
    assert event_types(client, si.id) == ["setup_intent.created", "setup_intent.setup_failed"]
    # attaching succeeds for this card; only charges fail later
    ok = client.v1.setup_intents.confirm(
        si.id, params={"payment_method": "pm_card_chargeCustomerFail"}
    )
    assert ok.status == "succeeded"
    other = client.v1.setup_intents.create(params={"customer": cus.id})
    canceled = client.v1.setup_intents.cancel(other.id, params={"cancellation_reason": "abandoned"})
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", "abandoned")
    with pytest.raises(stripe.InvalidRequestError) as state_err:
        client.v1.setup_intents.confirm(other.id, params={"payment_method": "pm_card_visa"})
    assert state_err.value.code == "setup_intent_unexpected_state"
