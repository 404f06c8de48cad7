from __future__ import annotations

from pathlib import Path

import pytest
import stripe

from stripe_emulator.config import Config
from stripe_emulator.testing import EmulatorHandle, assert_fixture_keys, running_emulator
from stripe_emulator.tests.money_helpers import amounts, manual_payouts, top_up


def _event_types(client: stripe.StripeClient, prefix: str = "payout.") -> list[str]:
    events = client.v1.events.list(params={"limit": 100}).data
    return [e.type for e in reversed(events) if e.type.startswith(prefix)]


def test_manual_payout_lifecycle(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    manual_payouts(client)
    top_up(emu, 10_000)
    po = client.v1.payouts.create(
        params={"amount": 4000, "currency": "usd", "description": "weekly", "metadata": {"k": "v"}}
    )
    assert_fixture_keys(po, "payout")
    assert (po.status, po.automatic, po.method, po.reconciliation_status) == (
        "pending", False, "standard", "not_applicable",
    )  # fmt: skip
    assert po.destination.startswith("ba_") and po.arrival_date > po.created
    assert amounts(client.v1.balance.retrieve()) == {"usd": 6000}
    bt = client.v1.balance_transactions.retrieve(po.balance_transaction)
    assert (bt.type, bt.reporting_category, bt.amount, bt.source) == (
        "payout",
        "payout",
        -4000,
        po.id,
    )

    updated = client.v1.payouts.update(po.id, params={"metadata": {"k": "", "n": "1"}})
    assert updated.metadata.to_dict() == {"n": "1"}

    emu.control.advance(seconds=3700)
    assert client.v1.payouts.retrieve(po.id).status == "in_transit"
    emu.control.advance(days=2)
    paid = client.v1.payouts.retrieve(po.id)
    assert paid.status == "paid" and paid.failure_code is None
    assert _event_types(client) == [
        "payout.created",
        "payout.updated",
        "payout.updated",
        "payout.paid",
    ]
    assert [p.id for p in client.v1.payouts.list(params={"status": "paid"}).data] == [po.id]
    assert client.v1.payouts.list(params={"status": "pending"}).data == []
    window = {"gte": po.arrival_date, "lte": po.arrival_date}
    assert [p.id for p in client.v1.payouts.list(params={"arrival_date": window}).data] == [po.id]
    assert amounts(client.v1.balance.retrieve()) == {"usd": 6000}


def test_payout_beyond_available_balance_is_refused(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    top_up(emu, 1000)
    top_up(emu, 5000, available=False)  # pending funds cannot be paid out
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payouts.create(params={"amount": 1001, "currency": "usd"})
    assert err.value.http_status == 400 and err.value.code == "balance_insufficient"
    assert client.v1.payouts.list().data == []
    assert amounts(client.v1.balance.retrieve()) == {"usd": 1000}


def test_payout_parameter_errors(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    top_up(emu, 1000)
    top_up(emu, 1000, currency="eur")
    cases: list[tuple[dict[str, object], str]] = [
        ({"amount": 100}, "currency"),
        ({"amount": 100, "currency": "usd", "destination": "ba_missing"}, "destination"),
        ({"amount": 100, "currency": "eur"}, "currency"),  # no eur bank account
        ({"amount": 100, "currency": "usd", "method": "instant"}, "method"),
        ({"amount": 100, "currency": "usd", "colour": "red"}, "colour"),
        ({"amount": 0, "currency": "usd"}, "amount"),
    ]
    for params, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.payouts.create(params=params)
        assert err.value.http_status == 400 and err.value.param == param, params
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payouts.retrieve("po_missing")
    assert err.value.http_status == 404


def test_cancel_only_pending_payouts(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    manual_payouts(client)
    top_up(emu, 5000)
    po = client.v1.payouts.create(params={"amount": 3000, "currency": "usd"})
    canceled = client.v1.payouts.cancel(po.id)
    assert canceled.status == "canceled"
    back = client.v1.balance_transactions.retrieve(canceled.failure_balance_transaction)
    assert (back.type, back.amount) == ("payout_cancel", 3000)
    assert amounts(client.v1.balance.retrieve()) == {"usd": 5000}
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payouts.cancel(po.id)

    moving = client.v1.payouts.create(params={"amount": 1000, "currency": "usd"})
    emu.control.advance(seconds=3700)
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payouts.cancel(moving.id)
    assert err.value.http_status == 400
    assert client.v1.payouts.retrieve(moving.id).status == "in_transit"
    assert "payout.canceled" in _event_types(client)


@pytest.mark.parametrize(
    ("number", "code"),
    [("000111111116", "no_account"), ("000111111113", "account_closed"),
     ("000222222227", "insufficient_funds")],
)  # fmt: skip
def test_failed_payout_returns_funds(
    emu: EmulatorHandle, client: stripe.StripeClient, number: str, code: str
) -> None:
    manual_payouts(client)
    bank = emu.control.call("POST", "/_emulator/platform/bank_account", {"account_number": number})
    assert bank["last4"] == number[-4:] and number not in str(bank)
    top_up(emu, 8000)
    po = client.v1.payouts.create(params={"amount": 8000, "currency": "usd"})
    assert po.destination == bank["id"]
    assert amounts(client.v1.balance.retrieve()) == {"usd": 0}
    emu.control.advance(days=3)
    failed = client.v1.payouts.retrieve(po.id)
    assert failed.status == "failed" and failed.failure_code == code and failed.failure_message
    refund = client.v1.balance_transactions.retrieve(failed.failure_balance_transaction)
    assert (refund.type, refund.reporting_category, refund.amount) == (
        "payout_failure", "payout_reversal", 8000,
    )  # fmt: skip
    assert amounts(client.v1.balance.retrieve()) == {"usd": 8000}
    assert _event_types(client)[-1] == "payout.failed"


def test_platform_bank_account_rejects_non_test_numbers(emu: EmulatorHandle) -> None:
    with pytest.raises(RuntimeError, match="400"):
        emu.control.call("POST", "/_emulator/platform/bank_account", {"account_number": "123"})


def test_automatic_daily_payout_sweeps_available_transactions(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    first = top_up(emu, 3000)
    second = top_up(emu, 1500)
    later = top_up(emu, 2000, available=False)  # settles two midnights from now
    assert client.v1.payouts.list().data == []

    emu.control.advance(days=1)  # past midnight UTC: the daily payout runs
    (po,) = client.v1.payouts.list().data
    assert_fixture_keys(po, "payout")
    assert po.automatic and po.amount == 4500 and po.reconciliation_status == "in_progress"
    assert amounts(client.v1.balance.retrieve()) == {"usd": 0}
    contained = client.v1.balance_transactions.list(params={"payout": po.id, "limit": 100}).data
    assert {t.id for t in contained} == {first["id"], second["id"], po.balance_transaction}
    own = [t for t in contained if t.type == "payout"]
    assert len(own) == 1 and own[0].amount == -po.amount
    assert sum(t.net for t in contained if t.type != "payout") == po.amount
    assert later["id"] not in {t.id for t in contained}

    emu.control.advance(days=2)
    done = client.v1.payouts.retrieve(po.id)
    assert done.status == "paid" and done.reconciliation_status == "completed"
    types = _event_types(client)
    assert "payout.reconciliation_completed" in types
    assert types.index("payout.paid") < types.index("payout.reconciliation_completed")
    # The pending top-up settled in the meantime and went out with a later daily payout.
    payouts = client.v1.payouts.list().data
    assert len(payouts) == 2
    second_po = payouts[0]
    swept = client.v1.balance_transactions.list(params={"payout": second_po.id}).data
    assert {t.id for t in swept} == {later["id"], second_po.balance_transaction}
    assert second_po.amount == sum(t.net for t in swept if t.type != "payout") == 2000


def test_automatic_payout_sweeps_manual_payouts_and_debits(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    """A payout's amount is the sum of what it contains, whatever the mix of transactions."""
    top_up(emu, 9000)
    manual = client.v1.payouts.create(params={"amount": 2500, "currency": "usd"})
    top_up(emu, -500)
    emu.control.advance(days=1)
    auto = [p for p in client.v1.payouts.list().data if p.automatic]
    assert len(auto) == 1 and auto[0].amount == 6000
    contained = client.v1.balance_transactions.list(params={"payout": auto[0].id}).data
    assert manual.balance_transaction in {t.id for t in contained}
    assert sum(t.net for t in contained if t.id != auto[0].balance_transaction) == 6000
    assert sum(t.net for t in contained) == 0
    # Nothing left: the next day sends no payout.
    emu.control.advance(days=1)
    assert len([p for p in client.v1.payouts.list().data if p.automatic]) == 1


def test_payouts_resume_after_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "emulator.sqlite")
    config = Config(global_rate=None, endpoint_rate=None)
    with running_emulator(config, store_path=db) as emu:
        client = emu.stripe_client()
        first = top_up(emu, 3000)
        emu.control.advance(days=1)
        (po,) = client.v1.payouts.list().data
        assert po.automatic and po.status != "paid"
        later = top_up(emu, 1000)
    with running_emulator(Config(global_rate=None, endpoint_rate=None), store_path=db) as emu:
        client = emu.stripe_client()
        emu.control.advance(days=3)
        assert client.v1.payouts.retrieve(po.id).status == "paid"
        newest = client.v1.payouts.list().data[0]
        assert newest.id != po.id and newest.amount == 1000
        swept = client.v1.balance_transactions.list(params={"payout": newest.id}).data
        assert {t.id for t in swept} == {later["id"], newest.balance_transaction}
        assert first["id"] not in {t.id for t in swept}
        assert amounts(client.v1.balance.retrieve()) == {"usd": 0}
