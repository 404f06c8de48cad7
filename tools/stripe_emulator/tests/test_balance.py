from __future__ import annotations

import pytest
import stripe

from stripe_emulator.testing import EmulatorHandle, assert_fixture_keys
from stripe_emulator.tests.money_helpers import amounts, manual_payouts, top_up


def test_balance_and_transactions(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    empty = client.v1.balance.retrieve()
    assert_fixture_keys(empty, "balance")
    assert amounts(empty) == {"usd": 0} and amounts(empty, "pending") == {"usd": 0}

    first = top_up(emu, 5000)
    top_up(emu, 2000, available=False)
    top_up(emu, 700, currency="eur")
    bal = client.v1.balance.retrieve()
    assert amounts(bal) == {"usd": 5000, "eur": 700}
    assert amounts(bal, "pending") == {"usd": 2000, "eur": 0}
    assert bal.available[0].source_types["card"] == 5000

    bt = client.v1.balance_transactions.retrieve(first["id"])
    assert_fixture_keys(bt, "balance_transaction")
    assert (bt.type, bt.reporting_category, bt.status) == (
        "adjustment",
        "other_adjustment",
        "available",
    )
    assert bt.net == bt.amount - bt.fee == 5000

    listed = client.v1.balance_transactions.list()
    assert [t.amount for t in listed.data] == [700, 2000, 5000]
    assert [t.status for t in listed.data] == ["available", "pending", "available"]
    eur = client.v1.balance_transactions.list(params={"currency": "eur"})
    assert [t.amount for t in eur.data] == [700]
    page = client.v1.balance_transactions.list(params={"limit": 2, "type": "adjustment"})
    assert page.has_more and len(page.data) == 2
    rest = client.v1.balance_transactions.list(
        params={"limit": 2, "starting_after": page.data[-1].id}
    )
    assert [t.id for t in rest.data] == [first["id"]] and not rest.has_more
    assert client.v1.balance_transactions.list(params={"type": "payout"}).data == []


def test_balance_transaction_errors(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.balance_transactions.retrieve("txn_missing")
    assert err.value.http_status == 404 and err.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.balance_transactions.list(params={"payout": "po_missing"})
    assert err.value.http_status == 404 and err.value.param == "payout"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.balance_transactions.list(params={"typ": "payout"})
    assert err.value.http_status == 400 and err.value.param == "typ"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.balance_transactions.list(params={"currency": "xxx"})
    assert err.value.param == "currency"


def test_settling_funds_emit_one_balance_available_per_account(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    manual_payouts(client)
    for amount in (1000, 2000, 3000):
        top_up(emu, amount, available=False)
    assert client.v1.events.list(params={"type": "balance.available"}).data == []
    emu.control.advance(days=3)
    events = client.v1.events.list(params={"type": "balance.available"}).data
    assert len(events) == 1
    snapshot = events[0].data.object
    assert amounts(snapshot) == {"usd": 6000} and amounts(snapshot, "pending") == {"usd": 0}
    statuses = {t.status for t in client.v1.balance_transactions.list().data}
    assert statuses == {"available"}
