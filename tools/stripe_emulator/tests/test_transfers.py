from __future__ import annotations

from typing import Any

import pytest
import stripe

from stripe_emulator.testing import EmulatorHandle, assert_fixture_keys
from stripe_emulator.tests.money_helpers import (
    amounts,
    as_account,
    connected,
    manual_payouts,
    top_up,
)


def _bts(client: stripe.StripeClient, account: str | None = None) -> list[Any]:
    options = as_account(account) if account else None
    return client.v1.balance_transactions.list(params={"limit": 100}, options=options).data


def test_transfer_and_reversals(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    manual_payouts(client)
    acct = connected(client, settings={"payouts": {"schedule": {"interval": "manual"}}})
    top_up(emu, 10_000)
    tr = client.v1.transfers.create(
        params={"amount": 3000, "currency": "usd", "destination": acct.id,
                "transfer_group": "order-7", "metadata": {"order": "7"}}
    )  # fmt: skip
    assert_fixture_keys(tr, "transfer")
    assert tr.destination == acct.id and tr.destination_payment.startswith("py_")
    assert tr.amount_reversed == 0 and not tr.reversed and tr.source_transaction is None
    assert amounts(client.v1.balance.retrieve()) == {"usd": 7000}
    assert amounts(client.v1.balance.retrieve(options=as_account(acct.id))) == {"usd": 3000}
    plat_bt = client.v1.balance_transactions.retrieve(tr.balance_transaction)
    assert (plat_bt.type, plat_bt.amount, plat_bt.source) == ("transfer", -3000, tr.id)
    (payment_bt,) = _bts(client, acct.id)
    assert (payment_bt.type, payment_bt.reporting_category, payment_bt.amount) == (
        "payment", "charge", 3000,
    )  # fmt: skip
    assert payment_bt.source == tr.destination_payment

    other = connected(client)
    client.v1.transfers.create(params={"amount": 500, "currency": "usd", "destination": other.id})
    by_dest = client.v1.transfers.list(params={"destination": acct.id}).data
    assert [t.id for t in by_dest] == [tr.id]
    by_group = client.v1.transfers.list(params={"transfer_group": "order-7"}).data
    assert [t.id for t in by_group] == [tr.id]
    assert len(client.v1.transfers.list().data) == 2
    updated = client.v1.transfers.update(tr.id, params={"description": "July payout share"})
    assert updated.description == "July payout share"

    rev = client.v1.transfers.reversals.create(tr.id, params={"amount": 1000})
    assert_fixture_keys(rev, "transfer_reversal")
    assert rev.transfer == tr.id and rev.destination_payment_refund.startswith("pyr_")
    back = client.v1.balance_transactions.retrieve(rev.balance_transaction)
    assert (back.type, back.reporting_category, back.amount) == (
        "transfer_refund", "transfer_reversal", 1000,
    )  # fmt: skip
    assert amounts(client.v1.balance.retrieve()) == {"usd": 7500}
    assert amounts(client.v1.balance.retrieve(options=as_account(acct.id))) == {"usd": 2000}
    assert "payment_refund" in {t.type for t in _bts(client, acct.id)}
    partial = client.v1.transfers.retrieve(tr.id)
    assert partial.amount_reversed == 1000 and not partial.reversed
    assert [r.id for r in partial.reversals.data] == [rev.id]

    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.transfers.reversals.create(tr.id, params={"amount": 2001})
    assert err.value.http_status == 400 and err.value.param == "amount"
    rest = client.v1.transfers.reversals.create(tr.id)
    assert rest.amount == 2000 and client.v1.transfers.retrieve(tr.id).reversed
    listed = client.v1.transfers.reversals.list(tr.id).data
    assert [r.id for r in listed] == [rest.id, rev.id]
    assert client.v1.transfers.reversals.retrieve(tr.id, rev.id).amount == 1000
    assert amounts(client.v1.balance.retrieve(options=as_account(acct.id))) == {"usd": 0}
    types = [e.type for e in client.v1.events.list(params={"limit": 100}).data]
    assert types.count("transfer.reversed") == 2 and types.count("transfer.created") == 2
    assert "transfer.updated" in types


def test_transfer_errors(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    acct = connected(client)
    no_caps = connected(client, capabilities={"card_payments": {"requested": True}})
    top_up(emu, 1000)
    top_up(emu, 5000, available=False)
    base = {"currency": "usd", "destination": acct.id}
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.transfers.create(params={**base, "amount": 1001})
    assert err.value.http_status == 400 and err.value.code == "balance_insufficient"
    cases: list[tuple[dict[str, object], str]] = [
        ({**base, "amount": 100, "destination": "acct_nobody"}, "destination"),
        ({**base, "amount": 100, "destination": no_caps.id}, "destination"),
        ({**base, "amount": 100, "source_transaction": "ch_missing"}, "source_transaction"),
        ({"amount": 100, "currency": "usd"}, "destination"),
        ({**base, "amount": 100, "tip": "1"}, "tip"),
    ]
    for params, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.transfers.create(params=params)
        assert err.value.http_status == 400 and err.value.param == param, params
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.transfers.retrieve("tr_missing")
    assert err.value.http_status == 404
    assert client.v1.transfers.list().data == []
    assert amounts(client.v1.balance.retrieve()) == {"usd": 1000}


def _destination_payment(
    client: stripe.StripeClient, acct: str, amount: int, fee: int | None
) -> stripe.PaymentIntent:
    params: dict[str, Any] = {
        "amount": amount,
        "currency": "usd",
        "confirm": True,
        "payment_method": "pm_card_visa",
        "transfer_data": {"destination": acct},
    }
    if fee is not None:
        params["application_fee_amount"] = fee
    pi = client.v1.payment_intents.create(params=params)
    assert pi.status == "succeeded"
    return pi


def test_destination_charge_with_application_fee_and_refund(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    manual_payouts(client)
    acct = connected(client, settings={"payouts": {"schedule": {"interval": "manual"}}})
    pi = _destination_payment(client, acct.id, 10_000, 1_000)
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert charge.transfer and charge.application_fee and charge.application_fee_amount == 1000
    assert charge.transfer_data.destination == acct.id

    tr = client.v1.transfers.retrieve(charge.transfer)
    assert tr.amount == 10_000 and tr.source_transaction == charge.id and tr.destination == acct.id
    fee = client.v1.application_fees.retrieve(charge.application_fee)
    assert_fixture_keys(fee, "application_fee")
    assert (fee.amount, fee.account, fee.originating_transaction) == (1000, acct.id, charge.id)
    assert fee.charge == tr.destination_payment
    assert [f.id for f in client.v1.application_fees.list(params={"charge": charge.id}).data] == [
        fee.id
    ]

    plat = {t.type: t for t in _bts(client)}
    assert set(plat) == {"charge", "transfer", "application_fee"}
    assert plat["transfer"].amount == -10_000 and plat["application_fee"].amount == 1000
    (payment,) = _bts(client, acct.id)
    assert (payment.type, payment.amount, payment.fee, payment.net) == (
        "payment",
        10_000,
        1000,
        9000,
    )
    assert payment.fee_details[0].type == "application_fee"
    # Nothing is created or lost: both sides together hold what the charge netted.
    assert plat["transfer"].net + plat["application_fee"].net + payment.net == 0
    # The funds follow the charge: pending until the charge's funds are available.
    assert {t.status for t in plat.values()} == {"pending"} and payment.status == "pending"
    emu.control.advance(days=3)
    assert amounts(client.v1.balance.retrieve(options=as_account(acct.id))) == {"usd": 9000}
    charge_net = client.v1.balance_transactions.retrieve(plat["charge"].id).net
    assert amounts(client.v1.balance.retrieve()) == {"usd": charge_net - 10_000 + 1000}

    refund = client.v1.refunds.create(
        params={"charge": charge.id, "amount": 5000, "reverse_transfer": True,
                "refund_application_fee": True}
    )  # fmt: skip
    assert refund.transfer_reversal and refund.transfer_reversal.startswith("trr_")
    reversed_tr = client.v1.transfers.retrieve(tr.id)
    assert reversed_tr.amount_reversed == 5000 and not reversed_tr.reversed
    rev = client.v1.transfers.reversals.retrieve(tr.id, refund.transfer_reversal)
    assert rev.source_refund == refund.id
    refunded_fee = client.v1.application_fees.retrieve(fee.id)
    assert refunded_fee.amount_refunded == 500 and not refunded_fee.refunded
    (fee_refund,) = client.v1.application_fees.refunds.list(fee.id).data
    assert_fixture_keys(fee_refund, "fee_refund")
    assert fee_refund.amount == 500 and fee_refund.fee == fee.id
    dest_types = {t.type: t.amount for t in _bts(client, acct.id)}
    assert dest_types["payment_refund"] == -5000 and dest_types["adjustment"] == 500
    assert amounts(client.v1.balance.retrieve(options=as_account(acct.id))) == {"usd": 4500}
    plat_types = {t.type: t.amount for t in _bts(client)}
    assert plat_types["transfer_refund"] == 5000 and plat_types["application_fee_refund"] == -500


def test_application_fee_refunds_api(client: stripe.StripeClient) -> None:
    acct = connected(client)
    pi = _destination_payment(client, acct.id, 4000, 400)
    charge = client.v1.charges.retrieve(pi.latest_charge)
    fee_id = charge.application_fee
    assert isinstance(fee_id, str)
    refunds = client.v1.application_fees.refunds
    part = refunds.create(fee_id, params={"amount": 150, "metadata": {"why": "goodwill"}})
    assert part.amount == 150 and part.metadata["why"] == "goodwill"
    with pytest.raises(stripe.InvalidRequestError) as err:
        refunds.create(fee_id, params={"amount": 251})
    assert err.value.http_status == 400 and err.value.param == "amount"
    rest = refunds.create(fee_id)
    assert rest.amount == 250
    fee = client.v1.application_fees.retrieve(fee_id)
    assert fee.refunded and fee.amount_refunded == 400
    assert [r.id for r in refunds.list(fee_id).data] == [rest.id, part.id]
    assert refunds.retrieve(fee_id, part.id).amount == 150
    assert refunds.update(fee_id, part.id, params={"metadata": {"n": "1"}}).metadata["n"] == "1"
    with pytest.raises(stripe.InvalidRequestError):
        refunds.create(fee_id)
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.application_fees.retrieve("fee_missing")
    assert err.value.http_status == 404


def test_transfer_with_source_transaction_uses_the_charge_funds(
    client: stripe.StripeClient,
) -> None:
    acct = connected(client)
    pi = client.v1.payment_intents.create(
        params={"amount": 6000, "currency": "usd", "confirm": True,
                "payment_method": "pm_card_visa", "transfer_group": "ord-9"}
    )  # fmt: skip
    assert amounts(client.v1.balance.retrieve()) == {"usd": 0}  # the charge is still pending
    base = {"currency": "usd", "destination": acct.id, "transfer_group": "ord-9"}
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.transfers.create(params={**base, "amount": 1000})
    assert err.value.code == "balance_insufficient"
    src = {**base, "source_transaction": pi.latest_charge}
    first = client.v1.transfers.create(params={**src, "amount": 4000})
    assert first.source_transaction == pi.latest_charge
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.transfers.create(params={**src, "amount": 2001})
    assert err.value.code == "balance_insufficient"
    client.v1.transfers.create(params={**src, "amount": 2000})
    pending = client.v1.balance.retrieve(options=as_account(acct.id))
    assert amounts(pending, "pending") == {"usd": 6000} and amounts(pending) == {"usd": 0}
