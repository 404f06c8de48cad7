from __future__ import annotations

import pytest
import stripe

from stripe_emulator.testing import EmulatorHandle, assert_fixture_keys
from stripe_emulator.tests.money_helpers import BANK, amounts, as_account, connected, top_up


def test_connected_account_scenario(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    acct = connected(client, metadata={"seller": "42"}, business_type="individual")
    assert_fixture_keys(acct, "account")
    assert acct.id.startswith("acct_") and acct.type == "custom" and acct.country == "US"
    assert acct.default_currency == "usd" and acct.metadata["seller"] == "42"
    assert acct.capabilities.to_dict() == {"card_payments": "active", "transfers": "active"}
    assert acct.charges_enabled and acct.payouts_enabled
    (bank,) = acct.external_accounts.data
    assert_fixture_keys(bank, "bank_account")
    assert_fixture_keys(bank, "external_account")
    assert (bank.last4, bank.routing_number, bank.default_for_currency) == (
        "6789",
        "110000000",
        True,
    )
    assert "000123456789" not in str(acct)  # the whole object as JSON

    assert client.v1.accounts.retrieve(acct.id).email == "seller@example.com"
    # The connected account reads itself with Stripe-Account.
    assert client.v1.accounts.retrieve(acct.id, options=as_account(acct.id)).id == acct.id
    assert client.v1.accounts.retrieve_current(options=as_account(acct.id)).id == acct.id

    updated = client.v1.accounts.update(
        acct.id, params={"email": "new@example.com", "metadata": {"seller": "", "tier": "gold"}}
    )
    assert updated.email == "new@example.com" and updated.metadata.to_dict() == {"tier": "gold"}
    events = client.v1.events.list(params={"type": "account.updated"}, options=as_account(acct.id))
    (event,) = events.data
    assert event.account == acct.id
    assert event.data.previous_attributes["email"] == "seller@example.com"

    other = connected(client, number=None, type="express", country="DE")
    assert other.default_currency == "eur" and not other.payouts_enabled
    listed = [a.id for a in client.v1.accounts.list().data]
    assert listed == [other.id, acct.id]  # newest first, never the platform itself

    deleted = client.v1.accounts.delete(other.id)
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.accounts.retrieve(other.id)
    assert err.value.http_status == 404 and err.value.code == "resource_missing"
    with pytest.raises(stripe.PermissionError):
        client.v1.balance.retrieve(options=as_account(other.id))


def test_account_parameter_errors(client: stripe.StripeClient) -> None:
    cases: list[tuple[dict[str, object], str]] = [
        ({"country": "US"}, "type"),
        ({"type": "platinum"}, "type"),
        ({"type": "custom", "capabilities": {"teleport": {"requested": True}}},
         "capabilities[teleport]"),
        ({"type": "custom", "default_currency": "zzz"}, "default_currency"),
        ({"type": "custom", "settings": {"payouts": {"schedule": {"interval": "hourly"}}}},
         "settings[payouts][schedule][interval]"),
        ({"type": "custom", "nickname": "x"}, "nickname"),
    ]  # fmt: skip
    for params, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.accounts.create(params=params)
        assert err.value.http_status == 400 and err.value.param == param, params
    assert client.v1.accounts.list().data == []


@pytest.mark.parametrize(
    ("external", "param"),
    [
        ({**BANK, "account_number": "000123456780"}, "external_account[account_number]"),
        ({**BANK, "account_number": "12ab"}, "external_account[account_number]"),
        ({**BANK, "routing_number": "11000000"}, "external_account[routing_number]"),
        ({**BANK, "object": "card"}, "external_account[number]"),  # a card needs its number
        ({**BANK, "object": "wallet"}, "external_account[object]"),
        ("btok_nonsense", "external_account"),
    ],
)
def test_bad_bank_accounts_are_refused(
    client: stripe.StripeClient, external: object, param: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.accounts.create(params={"type": "custom", "external_account": external})
    assert err.value.http_status == 400 and err.value.param == param
    assert "000123456780" not in str(err.value.user_message)
    assert client.v1.accounts.list().data == []


def test_external_accounts(client: stripe.StripeClient) -> None:
    acct = connected(client)
    first = acct.external_accounts.data[0]
    ext = client.v1.accounts.external_accounts
    second = ext.create(acct.id, params={"external_account": "btok_us_verified_noAccount",
                                         "metadata": {"n": "2"}})  # fmt: skip
    assert_fixture_keys(second, "external_account")
    assert second.last4 == "1116" and second.default_for_currency is False
    assert [b.id for b in ext.list(acct.id).data] == [second.id, first.id]
    assert ext.retrieve(acct.id, second.id).metadata["n"] == "2"

    with pytest.raises(stripe.InvalidRequestError) as err:
        ext.delete(acct.id, first.id)  # the default for the default currency
    assert err.value.http_status == 400

    promoted = ext.update(acct.id, second.id, params={"default_for_currency": True})
    assert promoted.default_for_currency is True
    assert ext.retrieve(acct.id, first.id).default_for_currency is False
    assert client.v1.accounts.retrieve(acct.id).external_accounts.data[0].id == second.id
    gone = ext.delete(acct.id, first.id)
    assert gone.deleted is True
    with pytest.raises(stripe.InvalidRequestError) as err:
        ext.retrieve(acct.id, first.id)
    assert err.value.http_status == 404
    with pytest.raises(stripe.InvalidRequestError) as err:
        ext.list("acct_missing")
    assert err.value.http_status == 404
    types = [e.type for e in client.v1.events.list(options=as_account(acct.id)).data]
    assert "account.external_account.created" in types
    assert "account.external_account.deleted" in types


def test_capabilities(client: stripe.StripeClient) -> None:
    acct = connected(client)
    caps = client.v1.accounts.capabilities
    listed = caps.list(acct.id).data
    assert [c.id for c in listed] == ["card_payments", "transfers"]
    for cap in listed:
        assert_fixture_keys(cap, "capability")
        assert cap.account == acct.id and cap.requested and cap.status == "active"
    off = caps.update(acct.id, "card_payments", params={"requested": False})
    assert (off.status, off.requested) == ("inactive", False)
    refreshed = client.v1.accounts.retrieve(acct.id)
    assert "card_payments" not in refreshed.capabilities and not refreshed.charges_enabled
    on = caps.update(acct.id, "link_payments", params={"requested": True})
    assert on.status == "active" and on.requested_at is not None
    assert caps.retrieve(acct.id, "link_payments").status == "active"
    with pytest.raises(stripe.InvalidRequestError) as err:
        caps.retrieve(acct.id, "teleport")
    assert err.value.http_status == 400


def test_connected_account_payouts(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    good = connected(client)
    closed = connected(
        client,
        number="000111111113",
        settings={"payouts": {"schedule": {"interval": "manual"}}},
    )
    top_up(emu, 4000, account=good.id)
    top_up(emu, 2500, account=closed.id)
    assert amounts(client.v1.balance.retrieve(options=as_account(good.id))) == {"usd": 4000}
    assert amounts(client.v1.balance.retrieve()) == {"usd": 0}  # the platform is separate

    manual = client.v1.payouts.create(
        params={"amount": 2500, "currency": "usd"}, options=as_account(closed.id)
    )
    assert manual.destination == closed.external_accounts.data[0].id
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payouts.retrieve(manual.id)  # not the platform's payout
    assert err.value.http_status == 404

    emu.control.advance(days=3)
    failed = client.v1.payouts.retrieve(manual.id, options=as_account(closed.id))
    assert failed.status == "failed" and failed.failure_code == "account_closed"
    assert amounts(client.v1.balance.retrieve(options=as_account(closed.id))) == {"usd": 2500}
    bank = client.v1.accounts.external_accounts.retrieve(closed.id, manual.destination)
    assert bank.status == "errored"

    # The daily account was paid out automatically, the manual one was not.
    (auto,) = client.v1.payouts.list(options=as_account(good.id)).data
    assert auto.automatic and auto.amount == 4000 and auto.status == "paid"
    contained = client.v1.balance_transactions.list(
        params={"payout": auto.id}, options=as_account(good.id)
    ).data
    assert sum(t.net for t in contained if t.type != "payout") == auto.amount
    assert [p.id for p in client.v1.payouts.list(options=as_account(closed.id)).data] == [manual.id]
