"""Automatic payouts of connected accounts on the emulator clock, by payout schedule."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import stripe

from stripe_emulator.resources.payouts import _due
from stripe_emulator.testing import EmulatorHandle
from stripe_emulator.tests.connect_helpers import custom_account, reqs
from stripe_emulator.tests.money_helpers import (
    BANK,
    ONBOARDED,
    amounts,
    as_account,
    connected,
    top_up,
)

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY = 86_400


def _date(ts: int) -> date:
    return datetime.fromtimestamp(ts, tz=UTC).date()


def _schedule(**schedule: Any) -> dict[str, Any]:
    return {"payouts": {"schedule": schedule}}


def _automatic(client: stripe.StripeClient, acct: str) -> list[stripe.Payout]:
    found = client.v1.payouts.list(params={"limit": 100}, options=as_account(acct)).data
    return [p for p in reversed(found) if p.automatic]


def _next_monthly(after: date, anchor: int) -> date:
    day = after + timedelta(days=1)
    while day.day != min(anchor, calendar.monthrange(day.year, day.month)[1]):
        day += timedelta(days=1)
    return day


def test_daily_schedule_with_delay_days(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    acct = connected(client, settings=_schedule(interval="daily", delay_days=4))
    assert acct.settings.payouts.schedule.to_dict() == {"delay_days": 4, "interval": "daily"}
    today = _date(emu.control.now())
    pending = top_up(emu, 7000, account=acct.id, available=False)
    assert _date(pending["available_on"]) == today + timedelta(days=4)
    # A charge on the connected account (Stripe-Account) waits delay_days too.
    pi = client.v1.payment_intents.create(
        params={"amount": 2000, "currency": "usd", "confirm": True,
                "payment_method": "pm_card_visa"},
        options=as_account(acct.id),
    )  # fmt: skip
    charge = client.v1.charges.retrieve(pi.latest_charge, options=as_account(acct.id))
    bt = client.v1.balance_transactions.retrieve(
        charge.balance_transaction, options=as_account(acct.id)
    )
    assert _date(bt.available_on) == today + timedelta(days=4)

    emu.control.advance(days=3)
    assert _automatic(client, acct.id) == []
    emu.control.advance(days=1)
    (po,) = _automatic(client, acct.id)
    assert _date(po.created) == today + timedelta(days=4)
    assert po.amount == 7000 + bt.net and po.reconciliation_status == "in_progress"
    contained = client.v1.balance_transactions.list(
        params={"payout": po.id}, options=as_account(acct.id)
    ).data
    assert {t.id for t in contained} == {pending["id"], bt.id, po.balance_transaction}
    emu.control.advance(days=3)
    done = client.v1.payouts.retrieve(po.id, options=as_account(acct.id))
    assert done.status == "paid" and done.reconciliation_status == "completed"
    rec = [e for e in client.v1.events.list(options=as_account(acct.id)).data
           if e.type == "payout.reconciliation_completed"]  # fmt: skip
    assert [e.data.object.id for e in rec] == [po.id] and rec[0].account == acct.id


def test_weekly_schedule_pays_on_its_anchor(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    anchor_day = _date(emu.control.now()) + timedelta(days=3)
    anchor = WEEKDAYS[anchor_day.weekday()]
    acct = connected(client, settings=_schedule(interval="weekly", weekly_anchor=anchor))
    assert acct.settings.payouts.schedule.weekly_anchor == anchor
    top_up(emu, 5000, account=acct.id)
    emu.control.advance(days=2)
    assert _automatic(client, acct.id) == []
    emu.control.advance(days=1)
    (first,) = _automatic(client, acct.id)
    assert _date(first.created) == anchor_day and first.amount == 5000
    top_up(emu, 1200, account=acct.id)
    emu.control.advance(days=6)
    assert len(_automatic(client, acct.id)) == 1
    emu.control.advance(days=1)
    second = _automatic(client, acct.id)[-1]
    assert _date(second.created) == anchor_day + timedelta(days=7) and second.amount == 1200


def test_monthly_anchor_past_the_month_end_pays_on_its_last_day(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    acct = connected(client, settings=_schedule(interval="monthly", monthly_anchor=31))
    today = _date(emu.control.now())
    seen: list[date] = []
    for month in range(3):
        top_up(emu, 1000 + month, account=acct.id)
        due = _next_monthly(today, 31)
        emu.control.advance(days=(due - today).days - 1)
        assert len(_automatic(client, acct.id)) == month
        emu.control.advance(days=1)
        payout = _automatic(client, acct.id)[-1]
        assert _date(payout.created) == due and payout.amount == 1000 + month
        seen.append(due)
        today = due
    assert any(d.day < 31 for d in seen)  # three months always include a short one


@pytest.mark.parametrize(
    ("day", "anchor", "due"),
    [("2027-02-28", 29, True), ("2027-02-28", 31, True), ("2027-02-27", 31, False),
     ("2028-02-28", 29, False), ("2028-02-29", 29, True), ("2028-02-29", 30, True),
     ("2027-04-30", 31, True), ("2027-04-30", 30, True), ("2027-05-30", 31, False),
     ("2027-05-31", 31, True), ("2027-05-15", 15, True), ("2027-05-16", 15, False)],
)  # fmt: skip
def test_monthly_anchor_rule(day: str, anchor: int, due: bool) -> None:
    at = datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() + 1
    assert _due({"interval": "monthly", "monthly_anchor": anchor}, at) is due


def test_manual_schedule_never_pays_out_by_itself(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    acct = connected(client, settings=_schedule(interval="manual"))
    top_up(emu, 3000, account=acct.id)
    emu.control.advance(days=10)
    assert client.v1.payouts.list(options=as_account(acct.id)).data == []
    assert amounts(client.v1.balance.retrieve(options=as_account(acct.id))) == {"usd": 3000}


def test_one_payout_per_currency(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    acct = connected(client)
    client.v1.accounts.external_accounts.create(
        acct.id, params={"external_account": {**BANK, "currency": "eur"}}
    )
    top_up(emu, 4000, account=acct.id)
    top_up(emu, 2500, currency="eur", account=acct.id)
    emu.control.advance(days=1)
    paid = {(p.currency, p.amount) for p in _automatic(client, acct.id)}
    assert paid == {("usd", 4000), ("eur", 2500)}


def test_payouts_wait_for_the_account_to_be_enabled(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    acct = custom_account(client, external_account=BANK)
    top_up(emu, 3000, account=acct.id)
    emu.control.advance(days=2)
    assert not client.v1.accounts.retrieve(acct.id).payouts_enabled
    assert _automatic(client, acct.id) == []
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payouts.create(
            params={"amount": 100, "currency": "usd"}, options=as_account(acct.id)
        )
    assert err.value.code == "payouts_not_allowed"
    acct = client.v1.accounts.update(acct.id, params=ONBOARDED)
    assert acct.payouts_enabled and reqs(acct)["currently_due"] == []
    emu.control.advance(days=1)
    assert [p.amount for p in _automatic(client, acct.id)] == [3000]


def test_schedule_parameters(client: stripe.StripeClient) -> None:
    acct = connected(client, settings=_schedule(interval="weekly", weekly_anchor="friday"))
    switched = client.v1.accounts.update(
        acct.id, params={"settings": _schedule(interval="monthly", monthly_anchor=15)}
    )
    assert switched.settings.payouts.schedule.to_dict() == {
        "delay_days": 2, "interval": "monthly", "monthly_anchor": 15,
    }  # fmt: skip
    minimum = client.v1.accounts.update(
        acct.id, params={"settings": _schedule(delay_days="minimum")}
    )
    assert minimum.settings.payouts.schedule.delay_days == 2
    cases: list[tuple[dict[str, Any], str]] = [
        (_schedule(interval="weekly"), "settings[payouts][schedule][weekly_anchor]"),
        (_schedule(interval="daily", weekly_anchor="monday"),
         "settings[payouts][schedule][weekly_anchor]"),
        (_schedule(monthly_anchor=32), "settings[payouts][schedule][monthly_anchor]"),
        (_schedule(delay_days=1), "settings[payouts][schedule][delay_days]"),
        (_schedule(weekly_anchor="someday"), "settings[payouts][schedule][weekly_anchor]"),
    ]  # fmt: skip
    for settings, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.accounts.update(acct.id, params={"settings": settings})
        assert err.value.param == param, settings
    events = client.v1.events.list(
        params={"type": "account.updated"}, options=as_account(acct.id)
    ).data
    assert (
        events[-1].data.previous_attributes["settings"]["payouts"]["schedule"]["interval"]
        == "weekly"
    )
