"""Subscription changes: items, quantities, prorations (to the second), pending updates."""

from __future__ import annotations

import pytest
import stripe

from stripe_emulator.testing import assert_fixture_keys
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

JAN = 31 * DAY  # the first period of a monthly subscription started at T0 (1 January)
MID = T0 + JAN // 2


def _setup(client: stripe.StripeClient, amount: int = 1000) -> tuple[str, str, str]:
    c = clock(client)
    cus = customer(client, clock_id=c.id)
    sub = subscribe(client, cus.id, price(client, amount).id)
    return c.id, cus.id, sub.id


def _proration_lines(inv: stripe.Invoice) -> list[tuple[int, str | None]]:
    return [
        (line.amount, line.description)
        for line in inv.lines.data
        if line.parent.subscription_item_details and line.parent.subscription_item_details.proration
    ]


def test_stripe_documented_proration_example(client: stripe.StripeClient) -> None:
    """docs.stripe.com/billing/subscriptions/prorations: $10 -> $20 monthly at mid-period
    gives -$5 (unused time) and +$10 (remaining time), net +$5."""
    clock_id, cus_id, sub_id = _setup(client, 1000)
    upgrade = price(client, 2000, name="Pro")
    advance(client, clock_id, MID)
    sub = client.v1.subscriptions.retrieve(sub_id)
    item = sub.items.data[0]
    change = {"items": [{"id": item.id, "price": upgrade.id}], "proration_date": MID}
    preview = client.v1.invoices.create_preview(
        params={"subscription": sub_id, "subscription_details": change}
    )
    assert preview.id.startswith("upcoming_in_")
    assert _proration_lines(preview) == [
        (-500, "Unused time on Pro after 16 Jan 2026"),
        (1000, "Remaining time on Pro after 16 Jan 2026"),
    ]
    updated = client.v1.subscriptions.update(sub_id, params=change)
    assert updated.items.data[0].id == item.id and updated.items.data[0].price.id == upgrade.id
    pending = client.v1.invoice_items.list(params={"customer": cus_id, "pending": True}).data
    assert_fixture_keys(pending[0], "invoiceitem")
    assert sorted(i.amount for i in pending) == [-500, 1000]
    assert all(i.proration and i.period.start == MID for i in pending)
    # create_prorations: swept into the next renewal with the new period's charge
    advance(client, clock_id, T0 + JAN + 2 * 3600)
    renewal = invoices_of(client, sub_id)[-1]
    assert (renewal.status, renewal.total, renewal.amount_paid) == ("paid", 2500, 2500)
    assert sorted(a for a, _ in _proration_lines(renewal)) == [-500, 1000]
    assert renewal.total == preview.total


def test_proration_is_to_the_second(client: stripe.StripeClient) -> None:
    clock_id, _cus, sub_id = _setup(client, 3100)
    upgrade = price(client, 6200)
    at = T0 + 10 * DAY + 3600  # 20 days 23 hours left of 31 days
    advance(client, clock_id, at)
    item = client.v1.subscriptions.retrieve(sub_id).items.data[0]
    client.v1.subscriptions.update(
        sub_id,
        params={
            "items": [{"id": item.id, "price": upgrade.id}],
            "proration_behavior": "always_invoice",
        },
    )
    inv = invoices_of(client, sub_id)[-1]
    left = T0 + JAN - at
    assert sorted(a for a, _ in _proration_lines(inv)) == [
        -round(3100 * left / JAN),
        round(6200 * left / JAN),
    ]
    assert (inv.billing_reason, inv.status) == ("subscription_update", "paid")


def test_proration_behaviors(client: stripe.StripeClient) -> None:
    clock_id, cus_id, sub_id = _setup(client, 1000)
    advance(client, clock_id, MID)
    item = client.v1.subscriptions.retrieve(sub_id).items.data[0]
    client.v1.subscriptions.update(
        sub_id, params={"items": [{"id": item.id, "quantity": 3}], "proration_behavior": "none"}
    )
    assert client.v1.invoice_items.list(params={"customer": cus_id}).data == []
    assert len(invoices_of(client, sub_id)) == 1
    marker = last_event_id(client)
    client.v1.subscriptions.update(
        sub_id,
        params={
            "items": [{"id": item.id, "quantity": 5}],
            "proration_date": MID,
            "proration_behavior": "always_invoice",
        },
    )
    now = invoices_of(client, sub_id)[-1]
    assert sorted(a for a, _ in _proration_lines(now)) == [-1500, 2500]
    assert now.amount_paid == 1000
    assert types_since(client, marker) == [
        "customer.subscription.updated",
        "invoiceitem.created",
        "invoiceitem.created",
        "invoice.created",
        "invoice.finalized",
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice_payment.paid",
    ]
    lines = [ln.description for ln in now.lines.data]
    assert "Unused time on 3 \u00d7 Pro after 16 Jan 2026" in lines


def test_items_added_removed_and_through_the_items_api(client: stripe.StripeClient) -> None:
    clock_id, cus_id, sub_id = _setup(client, 1000)
    addon = price(client, 600, name="Addon")
    advance(client, clock_id, MID)
    added = client.v1.subscription_items.create(
        params={
            "subscription": sub_id,
            "price": addon.id,
            "quantity": 2,
            "proration_date": MID,
            "metadata": {"k": "v"},
        }
    )
    assert_fixture_keys(added, "subscription_item")
    assert (added.quantity, added.metadata.to_dict()) == (2, {"k": "v"})
    assert added.current_period_end == T0 + JAN
    pending = client.v1.invoice_items.list(params={"customer": cus_id, "pending": True}).data
    assert [i.amount for i in pending] == [600]  # half a period of 2 x $6
    items = client.v1.subscription_items.list(params={"subscription": sub_id}).data
    assert len(items) == 2
    updated = client.v1.subscription_items.update(
        added.id, params={"quantity": 4, "proration_behavior": "none"}
    )
    assert updated.quantity == 4
    assert client.v1.subscription_items.retrieve(added.id).quantity == 4
    deleted = client.v1.subscription_items.delete(added.id, params={"proration_date": MID})
    assert_fixture_keys(deleted, "deleted_subscription_item")
    pending = client.v1.invoice_items.list(params={"customer": cus_id, "pending": True}).data
    assert sorted(i.amount for i in pending) == [-1200, 600]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscription_items.delete(items[0].id)  # the last item
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscription_items.retrieve(added.id)
    with pytest.raises(stripe.InvalidRequestError):  # duplicate price
        client.v1.subscription_items.create(
            params={"subscription": sub_id, "price": items[0].price.id}
        )


def test_interval_change_resets_the_anchor_and_invoices_now(client: stripe.StripeClient) -> None:
    clock_id, _cus, sub_id = _setup(client, 3100)
    yearly = price(client, 36500, interval="year")
    at = T0 + 10 * DAY
    advance(client, clock_id, at)
    item = client.v1.subscriptions.retrieve(sub_id).items.data[0]
    sub = client.v1.subscriptions.update(
        sub_id, params={"items": [{"id": item.id, "price": yearly.id}]}
    )
    assert sub.billing_cycle_anchor == at
    assert sub.items.data[0].current_period_start == at
    inv = invoices_of(client, sub_id)[-1]
    assert (inv.billing_reason, inv.total) == ("subscription_update", 36500 - 2100)
    assert inv.status == "paid"


def test_pending_if_incomplete_applies_only_once_paid(client: stripe.StripeClient) -> None:
    clock_id, cus_id, sub_id = _setup(client, 1000)
    upgrade = price(client, 3000)
    advance(client, clock_id, MID)
    attach_default(client, cus_id, "pm_card_chargeDeclined")
    item = client.v1.subscriptions.retrieve(sub_id).items.data[0]
    sub = client.v1.subscriptions.update(
        sub_id,
        params={
            "items": [{"id": item.id, "price": upgrade.id}],
            "proration_date": MID,
            "payment_behavior": "pending_if_incomplete",
        },
    )
    assert sub.pending_update is not None and sub.status == "active"
    assert sub.items.data[0].price.id != upgrade.id  # not applied yet
    inv = invoices_of(client, sub_id)[-1]
    assert inv.status == "open"
    good = client.v1.payment_methods.attach("pm_card_visa", params={"customer": cus_id})
    client.v1.invoices.pay(inv.id, params={"payment_method": good.id})
    applied = client.v1.subscriptions.retrieve(sub_id)
    assert applied.pending_update is None and applied.items.data[0].price.id == upgrade.id
    assert "customer.subscription.pending_update_applied" in types_since(client, None)


def test_pending_update_expires(client: stripe.StripeClient) -> None:
    clock_id, cus_id, sub_id = _setup(client, 1000)
    upgrade = price(client, 3000)
    advance(client, clock_id, MID)
    attach_default(client, cus_id, "pm_card_chargeDeclined")
    item = client.v1.subscriptions.retrieve(sub_id).items.data[0]
    client.v1.subscriptions.update(
        sub_id,
        params={
            "items": [{"id": item.id, "price": upgrade.id}],
            "payment_behavior": "pending_if_incomplete",
        },
    )
    advance(client, clock_id, MID + 23 * 3600 + 1)
    sub = client.v1.subscriptions.retrieve(sub_id)
    assert sub.pending_update is None and sub.items.data[0].price.id != upgrade.id
    assert invoices_of(client, sub_id)[-1].status == "void"
    assert "customer.subscription.pending_update_expired" in types_since(client, None)


def test_error_if_incomplete_refuses_an_update(client: stripe.StripeClient) -> None:
    _clock_id, cus_id, sub_id = _setup(client, 1000)
    attach_default(client, cus_id, "pm_card_chargeDeclined")
    item = client.v1.subscriptions.retrieve(sub_id).items.data[0]
    with pytest.raises(stripe.CardError):
        client.v1.subscriptions.update(
            sub_id,
            params={
                "items": [{"id": item.id, "quantity": 2}],
                "proration_behavior": "always_invoice",
                "payment_behavior": "error_if_incomplete",
            },
        )
    assert client.v1.subscriptions.retrieve(sub_id).items.data[0].quantity == 1


def test_failed_immediate_update_makes_it_past_due(client: stripe.StripeClient) -> None:
    _clock_id, cus_id, sub_id = _setup(client, 1000)
    attach_default(client, cus_id, "pm_card_chargeDeclined")
    item = client.v1.subscriptions.retrieve(sub_id).items.data[0]
    sub = client.v1.subscriptions.update(
        sub_id,
        params={"items": [{"id": item.id, "quantity": 2}], "proration_behavior": "always_invoice"},
    )
    assert sub.status == "past_due" and sub.items.data[0].quantity == 2


def test_metadata_discounts_and_defaults_update(client: stripe.StripeClient) -> None:
    _clock, _cus, sub_id = _setup(client, 1000)
    rate = client.v1.tax_rates.create(
        params={"display_name": "VAT", "percentage": 20, "inclusive": False}
    )
    coupon = client.v1.coupons.create(params={"percent_off": 10, "duration": "forever"})
    sub = client.v1.subscriptions.update(
        sub_id,
        params={
            "metadata": {"a": "1"},
            "default_tax_rates": [rate.id],
            "discounts": [{"coupon": coupon.id}],
            "description": "d",
        },
    )
    assert sub.metadata.to_dict() == {"a": "1"} and sub.default_tax_rates[0].id == rate.id
    assert len(sub.discounts) == 1 and sub.discounts[0].startswith("di_")
    discount = client.v1.subscriptions.retrieve(sub_id, params={"expand": ["discounts"]})
    assert_fixture_keys(discount.discounts[0], "discount")
    assert discount.discounts[0].source.coupon == coupon.id
    assert "customer.discount.created" in types_since(client, None)
    removed = client.v1.subscriptions.delete_discount(sub_id)
    assert_fixture_keys(removed, "deleted_discount")
    assert removed.deleted is True
    assert client.v1.subscriptions.retrieve(sub_id).discounts == []
