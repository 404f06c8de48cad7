"""Connected accounts' payouts: instant payouts and their fee, every failing test bank account
and debit card and what follows, bank returns, cancel and reversal, Connect webhooks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import stripe

from stripe_emulator.config import Config
from stripe_emulator.testing import EmulatorHandle, assert_fixture_keys
from stripe_emulator.tests.connect_helpers import events, previous, reqs
from stripe_emulator.tests.money_helpers import BANK, amounts, as_account, connected, top_up
from stripe_emulator.tests.test_webhooks import Receiver, wait_for

DAY = 86_400
MANUAL = {"payouts": {"schedule": {"interval": "manual"}}}
FAILING_BANKS = [
    ("000111111116", "no_account"),
    ("000111111113", "account_closed"),
    ("000222222227", "insufficient_funds"),
    ("000333333335", "debit_not_authorized"),
    ("000444444440", "invalid_currency"),
]
# Stripe documents no test number for these: the control call makes any account fail so.
OTHER_CODES = [
    "account_frozen", "bank_account_restricted", "bank_ownership_changed", "declined",
    "incorrect_account_holder_address", "incorrect_account_holder_name",
    "incorrect_account_holder_tax_id", "invalid_account_number", "unsupported_card",
]  # fmt: skip


@pytest.fixture
def returns_after_paid(emu: EmulatorHandle) -> Iterator[None]:
    emu.control.configure(payout_return_days=2)
    yield
    emu.control.configure(payout_return_days=Config().payout_return_days)


def _payout(client: stripe.StripeClient, acct: str, **params: Any) -> stripe.Payout:
    return client.v1.payouts.create(params={"currency": "usd", **params}, options=as_account(acct))


def _get(client: stripe.StripeClient, acct: str, po: str) -> stripe.Payout:
    return client.v1.payouts.retrieve(po, options=as_account(acct))


def _balance(client: stripe.StripeClient, acct: str) -> Any:
    return client.v1.balance.retrieve(options=as_account(acct))


def _bt(client: stripe.StripeClient, acct: str, bt: str) -> stripe.BalanceTransaction:
    return client.v1.balance_transactions.retrieve(bt, options=as_account(acct))


def _bt_sum(client: stripe.StripeClient, acct: str) -> dict[str, int]:
    out = {"available": 0, "pending": 0}
    for bt in client.v1.balance_transactions.list(
        params={"limit": 100}, options=as_account(acct)
    ).data:
        out[bt.status] += bt.net
    return out


# -- instant payouts --------------------------------------------------------------------------
def test_instant_payout_to_a_debit_card(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    acct = connected(client, settings=MANUAL)
    card = client.v1.accounts.external_accounts.create(
        acct.id,
        params={"external_account": "tok_visa_debit_us_transferSuccess",
                "default_for_currency": True},
    )  # fmt: skip
    assert_fixture_keys(card, "card")
    assert (card.object, card.brand, card.funding, card.last4) == ("card", "Visa", "debit", "5556")
    assert card.available_payout_methods == ["standard", "instant"] and card.status == "new"
    top_up(emu, 10_000, account=acct.id)
    top_up(emu, 5_000, account=acct.id, available=False)  # card funds still settling
    bal = _balance(client, acct.id)
    assert amounts(bal, "instant_available") == {"usd": 15_000}

    po = _payout(client, acct.id, amount=12_000, method="instant")
    assert_fixture_keys(po, "payout")
    assert (po.method, po.type, po.destination, po.status) == (
        "instant",
        "card",
        card.id,
        "pending",
    )
    assert po.arrival_date - po.created <= 1800
    bt = _bt(client, acct.id, po.balance_transaction)
    assert (bt.amount, bt.fee, bt.net) == (-12_000, 120, -12_120)  # 1 % instant fee
    assert bt.fee_details[0].description == "Instant Payout fee"
    # 2,120 came from pending funds: advanced now, taken back when they settle.
    bal = _balance(client, acct.id)
    assert amounts(bal) == {"usd": 0} and amounts(bal, "pending") == {"usd": 2_880}
    assert amounts(bal, "instant_available") == {"usd": 2_880}
    types = {t.type: t for t in client.v1.balance_transactions.list(options=as_account(acct.id))}
    assert types["advance"].amount == 2_120 and types["advance_funding"].amount == -2_120
    assert types["advance_funding"].status == "pending"

    emu.control.advance(seconds=1801)
    assert _get(client, acct.id, po.id).status == "paid"
    emu.control.advance(days=2)
    assert amounts(_balance(client, acct.id)) == {"usd": 2_880}
    assert _bt_sum(client, acct.id) == {"available": 2_880, "pending": 0}
    with pytest.raises(stripe.InvalidRequestError) as err:
        _payout(client, acct.id, amount=2_880, method="instant")  # the fee does not fit
    assert err.value.code == "balance_insufficient"


def test_instant_payout_fee_minimum_and_cancel(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    acct = connected(client, settings=MANUAL)
    top_up(emu, 5_000, account=acct.id)
    po = _payout(client, acct.id, amount=1_000, method="instant")
    assert po.type == "bank_account"
    assert _bt(client, acct.id, po.balance_transaction).fee == 50  # at least 0.50
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payouts.cancel(po.id, options=as_account(acct.id))


@pytest.mark.parametrize(
    "external",
    [{**BANK, "account_number": "000888888883"}, "tok_visa_debit_us_instantPayoutUnsupported"],
)
def test_instant_payouts_need_an_eligible_external_account(
    emu: EmulatorHandle, client: stripe.StripeClient, external: object
) -> None:
    acct = connected(client, settings=MANUAL, number=None)
    ext = client.v1.accounts.external_accounts.create(
        acct.id, params={"external_account": external}
    )
    assert ext.available_payout_methods == ["standard"]
    top_up(emu, 5_000, account=acct.id)
    assert "instant_available" not in _balance(client, acct.id)
    with pytest.raises(stripe.InvalidRequestError) as err:
        _payout(client, acct.id, amount=1_000, method="instant")
    assert err.value.code == "instant_payouts_unsupported"
    standard = _payout(client, acct.id, amount=1_000)  # standard payouts still work
    emu.control.advance(days=3)
    assert _get(client, acct.id, standard.id).status == "paid"


# -- failures ---------------------------------------------------------------------------------
def _fails(
    emu: EmulatorHandle, client: stripe.StripeClient, acct: stripe.Account, code: str
) -> stripe.Payout:
    top_up(emu, 8_000, account=acct.id)
    po = _payout(client, acct.id, amount=8_000)
    assert amounts(_balance(client, acct.id)) == {"usd": 0}
    emu.control.advance(days=3)
    failed = _get(client, acct.id, po.id)
    assert (failed.status, failed.failure_code) == ("failed", code) and failed.failure_message
    back = _bt(client, acct.id, failed.failure_balance_transaction)
    assert (back.type, back.reporting_category, back.amount) == (
        "payout_failure", "payout_reversal", 8_000,
    )  # fmt: skip
    assert amounts(_balance(client, acct.id)) == {"usd": 8_000}
    return failed


@pytest.mark.parametrize(("number", "code"), FAILING_BANKS)
def test_every_failing_test_bank_account(
    emu: EmulatorHandle, client: stripe.StripeClient, number: str, code: str
) -> None:
    acct = connected(client, number=number, settings=MANUAL)
    failed = _fails(emu, client, acct, code)
    bank = client.v1.accounts.external_accounts.retrieve(acct.id, failed.destination)
    after = client.v1.accounts.retrieve(acct.id)
    if code == "insufficient_funds":  # Stripe's balance, not the bank: nothing to fix there
        assert bank.status == "new" and after.payouts_enabled
        return
    assert bank.status == "errored"
    assert not after.payouts_enabled and after.charges_enabled
    assert reqs(after)["past_due"] == ["external_account"]
    assert reqs(after)["errors"][0]["requirement"] == "external_account"
    types = [e.type for e in events(client, acct.id)]
    assert types.index("payout.failed") < types.index("account.external_account.updated")
    assert types[-1] == "account.updated"


def test_failing_debit_card(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    acct = connected(client, number=None, settings=MANUAL)
    client.v1.accounts.external_accounts.create(
        acct.id, params={"external_account": "tok_visa_debit_us_transferFail"}
    )
    failed = _fails(emu, client, acct, "could_not_process")
    card = client.v1.accounts.external_accounts.retrieve(acct.id, failed.destination)
    assert card.status == "errored"


@pytest.mark.parametrize("code", OTHER_CODES)
def test_other_failure_codes(emu: EmulatorHandle, client: stripe.StripeClient, code: str) -> None:
    acct = connected(client, settings=MANUAL)
    ext = acct.external_accounts.data[0].id
    emu.control.call("POST", f"/_emulator/external_accounts/{ext}/payout_failure",
                     {"failure_code": code})  # fmt: skip
    _fails(emu, client, acct, code)


def test_errored_account_stops_scheduled_payouts_until_updated(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    acct = connected(client, number="000111111113")  # daily automatic payouts
    top_up(emu, 5_000, account=acct.id)
    emu.control.advance(days=1)
    (first,) = client.v1.payouts.list(options=as_account(acct.id)).data
    emu.control.advance(days=2)
    assert _get(client, acct.id, first.id).failure_code == "account_closed"
    emu.control.advance(days=3)  # the returned funds wait: no payout to an errored account
    assert len(client.v1.payouts.list(options=as_account(acct.id)).data) == 1
    assert amounts(_balance(client, acct.id)) == {"usd": 5_000}

    # The seller adds a working account: payouts resume with the next schedule.
    good = client.v1.accounts.external_accounts.create(
        acct.id, params={"external_account": BANK, "default_for_currency": True}
    )
    assert client.v1.accounts.retrieve(acct.id).payouts_enabled
    emu.control.advance(days=1)
    newest = client.v1.payouts.list(options=as_account(acct.id)).data[0]
    assert newest.id != first.id and newest.destination == good.id and newest.amount == 5_000
    emu.control.advance(days=3)
    assert _get(client, acct.id, newest.id).status == "paid"
    assert client.v1.accounts.external_accounts.retrieve(acct.id, good.id).status == "validated"


def test_updating_the_errored_account_resumes_payouts(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    acct = connected(client, settings=MANUAL)
    ext = acct.external_accounts.data[0].id
    emu.control.call("POST", f"/_emulator/external_accounts/{ext}/payout_failure",
                     {"failure_code": "account_frozen"})  # fmt: skip
    _fails(emu, client, acct, "account_frozen")
    emu.control.call("POST", f"/_emulator/external_accounts/{ext}/payout_failure",
                     {"failure_code": None})  # fmt: skip
    updated = client.v1.accounts.external_accounts.update(
        acct.id, ext, params={"account_holder_name": "Jane A. Austen"}
    )
    assert updated.status == "new"
    update_event = events(client, acct.id, "account.external_account.updated")[-1]
    assert previous(update_event)["status"] == "errored"
    assert client.v1.accounts.retrieve(acct.id).payouts_enabled
    po = _payout(client, acct.id, amount=8_000)
    emu.control.advance(days=3)
    assert _get(client, acct.id, po.id).status == "paid"


def test_bank_return_turns_a_paid_payout_failed(
    emu: EmulatorHandle, client: stripe.StripeClient, returns_after_paid: None
) -> None:
    acct = connected(client, number="000111111116", settings=MANUAL)
    top_up(emu, 4_000, account=acct.id)
    po = _payout(client, acct.id, amount=4_000)
    emu.control.advance(days=3)
    paid = _get(client, acct.id, po.id)
    assert paid.status == "paid" and paid.failure_code is None
    assert amounts(_balance(client, acct.id)) == {"usd": 0}
    emu.control.advance(days=2)
    failed = _get(client, acct.id, po.id)
    assert (failed.status, failed.failure_code) == ("failed", "no_account")
    assert amounts(_balance(client, acct.id)) == {"usd": 4_000}
    types = [e.type for e in events(client, acct.id, "payout.")]
    assert types == ["payout.created", "payout.updated", "payout.paid", "payout.failed"]


def test_fail_control_returns_a_paid_payout(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    acct = connected(client, settings=MANUAL)
    top_up(emu, 3_000, account=acct.id)
    po = _payout(client, acct.id, amount=3_000)
    emu.control.advance(days=3)
    assert _get(client, acct.id, po.id).status == "paid"
    failed = emu.control.call("POST", f"/_emulator/payouts/{po.id}/fail",
                              {"failure_code": "declined"})  # fmt: skip
    assert (failed["status"], failed["failure_code"]) == ("failed", "declined")
    assert amounts(_balance(client, acct.id)) == {"usd": 3_000}
    with pytest.raises(RuntimeError, match="400"):
        emu.control.call("POST", f"/_emulator/payouts/{po.id}/fail", {"failure_code": "declined"})
    with pytest.raises(RuntimeError, match="400"):
        emu.control.call("POST", f"/_emulator/payouts/{po.id}/fail", {"failure_code": "nope"})


# -- cancel, reverse ------------------------------------------------------------------------
def test_cancel_a_pending_payout_of_a_connected_account(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    acct = connected(client, settings=MANUAL)
    top_up(emu, 5_000, account=acct.id)
    po = _payout(client, acct.id, amount=3_000)
    canceled = client.v1.payouts.cancel(po.id, options=as_account(acct.id))
    assert canceled.status == "canceled"
    assert _bt(client, acct.id, canceled.failure_balance_transaction).type == "payout_cancel"
    assert amounts(_balance(client, acct.id)) == {"usd": 5_000}
    moving = _payout(client, acct.id, amount=1_000)
    emu.control.advance(seconds=3601)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payouts.cancel(moving.id, options=as_account(acct.id))


def test_reverse_a_paid_payout(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    acct = connected(client, settings=MANUAL)
    top_up(emu, 6_000, account=acct.id)
    po = _payout(client, acct.id, amount=6_000)
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payouts.reverse(po.id, options=as_account(acct.id))  # pending: cancel it
    assert "cancel" in str(err.value.user_message)
    emu.control.advance(days=3)
    rev = client.v1.payouts.reverse(
        po.id, params={"metadata": {"reason": "sent twice"}}, options=as_account(acct.id)
    )
    assert_fixture_keys(rev, "payout")
    assert rev.original_payout == po.id and rev.amount == 6_000 and rev.status == "pending"
    assert rev.metadata["reason"] == "sent twice"
    assert _get(client, acct.id, po.id).reversed_by == rev.id
    back = _bt(client, acct.id, rev.balance_transaction)
    assert (back.type, back.reporting_category, back.amount) == ("payout", "payout_reversal", 6_000)
    assert amounts(_balance(client, acct.id)) == {"usd": 6_000}
    emu.control.advance(days=3)
    assert _get(client, acct.id, rev.id).status == "paid"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payouts.reverse(po.id, options=as_account(acct.id))  # only once
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payouts.reverse(rev.id, options=as_account(acct.id))
    updated = [e for e in events(client, acct.id, "payout.updated") if e.data.object.id == po.id]
    assert previous(updated[-1]) == {"reversed_by": None}


def test_platform_payouts_cannot_be_reversed(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    top_up(emu, 2_000)
    po = client.v1.payouts.create(params={"amount": 2_000, "currency": "usd"})
    emu.control.advance(days=3)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payouts.reverse(po.id)


# -- webhooks, keys ---------------------------------------------------------------------------
def test_connect_endpoint_receives_payout_and_account_events(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    rx = Receiver()
    try:
        endpoint = client.v1.webhook_endpoints.create(
            params={"url": rx.url, "connect": True,
                    "enabled_events": ["account.updated", "payout.failed",
                                       "account.external_account.updated"]},
        )  # fmt: skip
        acct = connected(client, number="000111111113", settings=MANUAL)
        top_up(emu, 1_000, account=acct.id)
        _payout(client, acct.id, amount=1_000)
        emu.control.advance(days=3)
        wanted = {"payout.failed", "account.external_account.updated", "account.updated"}
        wait_for(lambda: wanted <= {e["type"] for e in rx.events()}, what="Connect events")
        got = rx.events()
        assert {e["account"] for e in got} == {acct.id}
        assert all(e["livemode"] is False for e in got)
        signed = rx.received()[0]
        stripe.Webhook.construct_event(
            signed[1].decode(), signed[0]["Stripe-Signature"], endpoint.secret
        )
    finally:
        rx.close()


def test_restricted_keys_cover_connect(emu: EmulatorHandle) -> None:
    emu.control.restricted_key("rk_test_payouts_svc", {"accounts": "write", "payouts": "write",
                                                       "balance": "read"})  # fmt: skip
    svc = emu.stripe_client("rk_test_payouts_svc")
    acct = connected(svc, settings=MANUAL)
    persons = svc.v1.accounts.persons.list(acct.id)
    assert persons.data == []
    with pytest.raises(stripe.PermissionError) as err:
        svc.v1.account_links.create(params={"account": acct.id, "type": "account_update"})
    assert "rak_account_link_write" in str(err.value)
    emu.control.restricted_key("rk_test_links", {"account_links": "write"})
    links = emu.stripe_client("rk_test_links")
    link = links.v1.account_links.create(params={"account": acct.id, "type": "account_update"})
    assert link.url
    routes = emu.control.call("GET", "/_emulator/routes")["data"]
    assert "POST /v1/payouts/{id}/reverse perm=payouts" in routes
    assert "POST /v1/accounts/{id}/persons perm=accounts" in routes


def test_bank_account_ownership_verification(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    acct = connected(client, number="000999999991", settings=MANUAL)
    bank = acct.external_accounts.data[0]
    assert bank.status == "new"
    emu.control.advance(seconds=61)
    assert client.v1.accounts.external_accounts.retrieve(acct.id, bank.id).status == "verified"
    (event,) = events(client, acct.id, "account.external_account.updated")
    assert previous(event) == {"status": "new"} and event.account == acct.id
