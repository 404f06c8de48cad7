"""Collection and dunning: retry schedules, hard declines, end-of-retries actions."""

from __future__ import annotations

from pathlib import Path

import pytest
import stripe

from stripe_emulator.__main__ import billing_settings, parse_args
from stripe_emulator.config import Billing
from stripe_emulator.testing import EmulatorHandle
from stripe_emulator.tests.billing_helpers import (
    DAY,
    T0,
    advance,
    attach_default,
    clock,
    customer,
    invoices_of,
    last_event_id,
    price,
    subscribe,
    types_since,
)

RENEWAL = T0 + 31 * DAY  # first renewal of a monthly subscription started at T0
FINALIZED = RENEWAL + 3600  # its invoice is finalized (and first attempted) an hour later


def _failing_renewal(client: stripe.StripeClient, card: str) -> tuple[str, str, str]:
    c = clock(client)
    cus = customer(client, clock_id=c.id)
    sub = subscribe(client, cus.id, price(client, 1000).id)
    attach_default(client, cus.id, card)
    return c.id, cus.id, sub.id


def test_smart_retries_default_schedule_then_cancel(client: stripe.StripeClient) -> None:
    clock_id, _cus, sub_id = _failing_renewal(client, "pm_card_chargeDeclinedInsufficientFunds")
    marker = last_event_id(client)
    advance(client, clock_id, FINALIZED + 60)
    inv = invoices_of(client, sub_id)[-1]
    assert (inv.status, inv.attempt_count, inv.next_payment_attempt) == (
        "open",
        1,
        FINALIZED + DAY,
    )
    # research A.13 (3)
    assert types_since(client, marker) == [
        "invoice.upcoming",
        "customer.subscription.updated",
        "invoice.created",
        "invoice.finalized",
        "payment_intent.created",
        "charge.failed",
        "payment_intent.payment_failed",
        "invoice.payment_failed",
        "invoice.updated",
        "customer.subscription.updated",
    ]
    assert client.v1.subscriptions.retrieve(sub_id).status == "past_due"
    seen = []
    for offset in (1, 3, 5, 7, 9, 11):  # 8 tries in 2 weeks: the first, then 7 retries
        advance(client, clock_id, FINALIZED + offset * DAY + 60)
        current = client.v1.invoices.retrieve(inv.id)
        seen.append((current.attempt_count, current.next_payment_attempt))
    assert seen == [(k + 2, FINALIZED + d * DAY) for k, d in enumerate((3, 5, 7, 9, 11, 14))]
    assert client.v1.subscriptions.retrieve(sub_id).status == "past_due"
    marker = last_event_id(client)
    advance(client, clock_id, FINALIZED + 14 * DAY + 60)
    done = client.v1.invoices.retrieve(inv.id)
    assert (done.attempt_count, done.next_payment_attempt, done.status) == (8, None, "open")
    sub = client.v1.subscriptions.retrieve(sub_id)
    assert sub.status == "canceled" and sub.cancellation_details.reason == "payment_failed"
    kinds = types_since(client, marker)
    assert kinds[-2:] == ["invoice.updated", "customer.subscription.deleted"]


def test_configured_schedule_unpaid_and_uncollectible(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    settings = emu.control.configure(
        billing={
            "retry_days": [1, 2],
            "end_action": "unpaid",
            "end_invoice_action": "uncollectible",
        }
    )
    assert settings["billing"]["retry_days"] == [1.0, 2.0]
    clock_id, cus_id, sub_id = _failing_renewal(client, "pm_card_chargeDeclined")
    advance(client, clock_id, FINALIZED + 2 * DAY + 60)
    inv = invoices_of(client, sub_id)[-1]
    assert (inv.attempt_count, inv.status) == (3, "uncollectible")
    assert client.v1.subscriptions.retrieve(sub_id).status == "unpaid"
    assert "invoice.marked_uncollectible" in types_since(client, None)
    # an unpaid subscription's invoices are created but not collected
    advance(client, clock_id, RENEWAL + 28 * DAY + 7200)
    closed = invoices_of(client, sub_id)[-1]
    assert (closed.status, closed.auto_advance) == ("draft", False)
    good = client.v1.payment_methods.attach("pm_card_visa", params={"customer": cus_id})
    client.v1.invoices.pay(closed.id, params={"payment_method": good.id})
    assert client.v1.subscriptions.retrieve(sub_id).status == "active"


def test_leave_past_due(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    emu.control.configure(billing={"retry_days": [1], "end_action": "past_due"})
    clock_id, _cus, sub_id = _failing_renewal(client, "pm_card_chargeDeclined")
    advance(client, clock_id, FINALIZED + DAY + 60)
    assert invoices_of(client, sub_id)[-1].next_payment_attempt is None
    assert client.v1.subscriptions.retrieve(sub_id).status == "past_due"


def test_no_retry_after_a_hard_decline(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    emu.control.configure(billing={"retry_days": [1, 2, 3]})
    clock_id, cus_id, sub_id = _failing_renewal(client, "pm_card_chargeDeclinedLostCard")
    advance(client, clock_id, FINALIZED + 2 * DAY + 60)
    inv = invoices_of(client, sub_id)[-1]
    assert inv.attempt_count == 3  # retries are counted ...
    failed = client.v1.charges.list(params={"customer": cus_id}).data
    assert [ch.status for ch in failed].count("failed") == 1  # ... but not charged
    attach_default(client, cus_id, "pm_card_visa")  # a new payment method is tried
    advance(client, clock_id, FINALIZED + 3 * DAY + 60)
    paid = client.v1.invoices.retrieve(inv.id)
    assert (paid.status, paid.attempt_count) == ("paid", 4)
    assert client.v1.subscriptions.retrieve(sub_id).status == "active"


def test_billing_settings_are_discoverable(emu: EmulatorHandle) -> None:
    billing = emu.control.call("GET", "/_emulator/config")["billing"]
    assert billing["retry_days"] == [1, 3, 5, 7, 9, 11, 14]
    assert (billing["end_action"], billing["finalize_after_s"]) == ("cancel", 3600)
    for bad in ({"end_action": "explode"}, {"retry_days": [3, 1]}, {"nope": 1}):
        try:
            emu.control.configure(billing=bad)
        except RuntimeError as exc:
            assert "400" in str(exc)
        else:  # pragma: no cover - the emulator must refuse it
            raise AssertionError(f"accepted {bad}")


def test_billing_settings_from_the_command_line(tmp_path: Path) -> None:
    table = tmp_path / "tax.json"
    table.write_text('{"us-ny": {"percentage": 8.875}}')
    args = parse_args(
        [
            "--retry-days",
            "1,2,4",
            "--end-action",
            "unpaid",
            "--end-invoice-action",
            "uncollectible",
            "--upcoming-days",
            "off",
            "--tax-jurisdictions",
            f"@{table}",
        ]
    )
    billing = billing_settings(args)
    assert billing.retry_days == [1.0, 2.0, 4.0]
    assert (billing.end_action, billing.end_invoice_action) == ("unpaid", "uncollectible")
    assert billing.upcoming_renewal_days is None
    assert billing.tax_jurisdictions == {"US-NY": {"percentage": 8.875}}
    assert billing_settings(parse_args([])) == Billing()
    with pytest.raises(SystemExit):
        parse_args(["--retry-days", "3,1"])
