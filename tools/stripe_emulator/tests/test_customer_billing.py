from __future__ import annotations

import pytest
import stripe

from stripe_emulator.testing import EmulatorHandle, assert_fixture_keys


def test_payment_method_on_create_attaches_and_default_is_explicit(
    client: stripe.StripeClient,
) -> None:
    plain = client.v1.customers.create(params={"payment_method": "pm_card_visa"})
    assert plain.invoice_settings.default_payment_method is None
    attached = client.v1.customers.payment_methods.list(plain.id).data
    assert len(attached) == 1 and attached[0].id.startswith("pm_")

    both = client.v1.customers.create(
        params={
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        }
    )
    (pm,) = client.v1.customers.payment_methods.list(both.id).data
    assert both.invoice_settings.default_payment_method == pm.id  # the minted id

    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.update(
            plain.id, params={"invoice_settings": {"default_payment_method": pm.id}}
        )
    assert err.value.param == "invoice_settings[default_payment_method]"
    updated = client.v1.customers.update(
        plain.id, params={"invoice_settings": {"default_payment_method": attached[0].id}}
    )
    assert updated.invoice_settings.default_payment_method == attached[0].id


def test_credit_balance_moves_through_balance_transactions(client: stripe.StripeClient) -> None:
    cus = client.v1.customers.create(params={"balance": -500, "email": "b@example.com"})
    assert cus.balance == -500 and cus.currency == "usd"
    (initial,) = client.v1.customers.balance_transactions.list(cus.id).data
    assert_fixture_keys(initial, "customer_balance_transaction")
    assert (initial.type, initial.amount, initial.ending_balance) == ("initial", -500, -500)

    txn = client.v1.customers.balance_transactions.create(
        cus.id, params={"amount": -250, "currency": "usd", "description": "goodwill"}
    )
    assert (txn.type, txn.ending_balance) == ("adjustment", -750)
    assert client.v1.customers.retrieve(cus.id).balance == -750
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.balance_transactions.create(
            cus.id, params={"amount": 100, "currency": "eur"}
        )
    assert err.value.param == "currency"
    updated = client.v1.customers.update(cus.id, params={"balance": 0})
    assert updated.balance == 0
    types = [t.type for t in client.v1.customers.balance_transactions.list(cus.id).data]
    assert types == ["adjustment", "adjustment", "initial"]
    fetched = client.v1.customers.balance_transactions.retrieve(cus.id, txn.id)
    assert fetched.description == "goodwill"


def test_tax_ids(client: stripe.StripeClient) -> None:
    cus = client.v1.customers.create(
        params={
            "tax_id_data": [{"type": "eu_vat", "value": "DE123456789"}],
            "address": {"country": "DE", "postal_code": "10115"},
        }
    )
    (vat,) = client.v1.customers.tax_ids.list(cus.id).data
    assert_fixture_keys(vat, "tax_id")
    assert (vat.country, vat.verification.status) == ("DE", "pending")
    ein = client.v1.customers.tax_ids.create(cus.id, params={"type": "us_ein", "value": "12-3"})
    assert ein.country == "US" and ein.owner.customer == cus.id
    assert_fixture_keys(client.v1.customers.tax_ids.delete(cus.id, ein.id), "deleted_tax_id")
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.tax_ids.create(cus.id, params={"type": "xx_bad", "value": "1"})
    assert err.value.param == "type"
    types = [e.type for e in client.v1.events.list().data]
    assert types[:3] == [
        "customer.tax_id.deleted",
        "customer.tax_id.created",
        "customer.tax_id.created",
    ]


def test_tokens_and_card_sources(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    token = client.v1.tokens.create(
        params={
            "card": {
                "number": "4242424242424242",
                "exp_month": 12,
                "exp_year": 2040,
                "cvc": "123",
                "name": "Ada",
            }
        }
    )
    assert_fixture_keys(token, "token", nested=("card",))
    assert (token.card.brand, token.card.last4, token.used) == ("Visa", "4242", False)
    cus = client.v1.customers.create(params={"source": token.id})
    assert cus.default_source == token.card.id
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.payment_sources.create(cus.id, params={"source": token.id})
    assert err.value.code == "token_already_used"

    magic = client.v1.customers.payment_sources.create(cus.id, params={"source": "tok_mastercard"})
    again = client.v1.customers.payment_sources.create(cus.id, params={"source": "tok_mastercard"})
    assert magic.id != again.id and magic.brand == "MasterCard" and magic.customer == cus.id
    assert_fixture_keys(magic, "card")
    listed = client.v1.customers.payment_sources.list(cus.id, params={"object": "card"}).data
    assert {c.id for c in listed} == {token.card.id, magic.id, again.id}

    # a card source pays like a PaymentMethod
    pi = client.v1.payment_intents.create(
        params={
            "amount": 1000,
            "currency": "usd",
            "customer": cus.id,
            "payment_method": magic.id,
            "confirm": True,
        }
    )
    assert pi.status == "succeeded"
    declined = client.v1.customers.payment_sources.create(
        cus.id, params={"source": "tok_chargeDeclined"}
    )
    with pytest.raises(stripe.CardError):
        client.v1.payment_intents.create(
            params={
                "amount": 1000,
                "currency": "usd",
                "customer": cus.id,
                "payment_method": declined.id,
                "confirm": True,
            }
        )

    gone = client.v1.customers.payment_sources.delete(cus.id, token.card.id)
    assert_fixture_keys(gone, "deleted_card")
    assert gone.deleted is True
    assert client.v1.customers.retrieve(cus.id).default_source in (magic.id, again.id, declined.id)
    expanded = client.v1.customers.retrieve(cus.id, params={"expand": ["sources"]})
    assert len(expanded.sources.data) == 3
    kinds = [e.type for e in client.v1.events.list(params={"limit": 100}).data]
    assert "customer.source.created" in kinds and "customer.source.deleted" in kinds
