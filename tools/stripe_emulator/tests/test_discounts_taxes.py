"""Coupons, promotion codes, tax rates, automatic tax and credit balances on invoices."""

from __future__ import annotations

import pytest
import stripe

from stripe_emulator.testing import EmulatorHandle, assert_fixture_keys
from stripe_emulator.tests.billing_helpers import (
    DAY,
    T0,
    advance,
    clock,
    customer,
    invoices_of,
    price,
    subscribe,
    types_since,
)


def _invoice(
    client: stripe.StripeClient, cus_id: str, amount: int, **extra: object
) -> stripe.Invoice:
    client.v1.invoice_items.create(params={"customer": cus_id, "amount": amount, "currency": "usd"})
    return client.v1.invoices.create(
        params={"customer": cus_id, "pending_invoice_items_behavior": "include", **extra}
    )


def test_coupons_and_promotion_codes(client: stripe.StripeClient) -> None:
    pct = client.v1.coupons.create(
        params={"percent_off": 25, "duration": "forever", "name": "quarter"}
    )
    assert_fixture_keys(pct, "coupon")
    amount = client.v1.coupons.create(
        params={"amount_off": 300, "currency": "usd", "duration": "once", "id": "THREE"}
    )
    assert amount.id == "THREE" and amount.valid
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.coupons.create(params={"percent_off": 10, "amount_off": 5, "currency": "usd"})
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.coupons.create(params={"percent_off": 10, "duration": "repeating"})
    assert err.value.param == "duration_in_months"
    promo = client.v1.promotion_codes.create(
        params={
            "promotion": {"type": "coupon", "coupon": pct.id},
            "code": "SPRING",
            "max_redemptions": 1,
        }
    )
    assert_fixture_keys(promo, "promotion_code")
    assert promo.promotion.coupon == pct.id and promo.active
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.promotion_codes.create(
            params={"promotion": {"type": "coupon", "coupon": pct.id}, "code": "SPRING"}
        )

    cus = customer(client)
    inv = _invoice(client, cus.id, 2000, discounts=[{"promotion_code": promo.id}])
    assert (inv.subtotal, inv.total) == (2000, 1500)
    assert inv.total_discount_amounts[0].amount == 500
    assert inv.lines.data[0].discount_amounts[0].amount == 500
    assert client.v1.promotion_codes.retrieve(promo.id).times_redeemed == 1
    with pytest.raises(stripe.InvalidRequestError):  # max_redemptions reached
        _invoice(client, cus.id, 100, discounts=[{"promotion_code": promo.id}])
    both = _invoice(
        client, customer(client).id, 2000, discounts=[{"coupon": pct.id}, {"coupon": amount.id}]
    )
    assert both.total == 2000 - 500 - 300
    assert [p.code for p in client.v1.promotion_codes.list(params={"code": "SPRING"}).data] == [
        "SPRING"
    ]
    assert_fixture_keys(client.v1.coupons.delete(amount.id), "deleted_coupon")


def test_coupon_durations_on_a_subscription(client: stripe.StripeClient) -> None:
    c = clock(client)
    once = client.v1.coupons.create(params={"percent_off": 50, "duration": "once"})
    repeating = client.v1.coupons.create(
        params={
            "amount_off": 100,
            "currency": "usd",
            "duration": "repeating",
            "duration_in_months": 2,
        }
    )
    cus = customer(client, clock_id=c.id)
    sub = subscribe(
        client,
        cus.id,
        price(client, 1000).id,
        discounts=[{"coupon": once.id}, {"coupon": repeating.id}],
    )
    first = client.v1.invoices.retrieve(sub.latest_invoice)
    assert first.total == 1000 - 500 - 100  # both apply, in order
    t = T0
    for month in (31, 28, 31):
        t += month * DAY
        advance(client, c.id, t + 7200)
    totals = [i.total for i in invoices_of(client, sub.id)]
    assert totals == [400, 900, 1000, 1000]  # once: first; repeating: two months
    assert "customer.discount.deleted" in types_since(client, None)


def test_exclusive_and_inclusive_tax_rates(client: stripe.StripeClient) -> None:
    vat = client.v1.tax_rates.create(
        params={
            "display_name": "VAT",
            "percentage": 20,
            "inclusive": True,
            "country": "DE",
            "jurisdiction": "DE",
            "tax_type": "vat",
        }
    )
    assert_fixture_keys(vat, "tax_rate")
    sales = client.v1.tax_rates.create(
        params={"display_name": "Sales tax", "percentage": 8.25, "inclusive": False}
    )
    cus = customer(client)
    inclusive = _invoice(client, cus.id, 1200, default_tax_rates=[vat.id])
    assert (inclusive.subtotal, inclusive.total, inclusive.subtotal_excluding_tax) == (
        1200,
        1200,
        1000,
    )
    assert inclusive.total_taxes[0].amount == 200
    assert inclusive.total_taxes[0].tax_behavior == "inclusive"
    exclusive = _invoice(client, cus.id, 1000, default_tax_rates=[sales.id])
    assert (exclusive.total, exclusive.total_excluding_tax) == (1083, 1000)  # 82.5 rounds up
    tax = exclusive.lines.data[0].taxes[0]
    assert (tax.amount, tax.taxable_amount, tax.tax_rate_details.tax_rate) == (83, 1000, sales.id)
    client.v1.tax_rates.update(sales.id, params={"active": False})
    with pytest.raises(stripe.InvalidRequestError):
        _invoice(client, cus.id, 100, default_tax_rates=[sales.id])
    assert [r.id for r in client.v1.tax_rates.list(params={"active": True}).data] == [vat.id]


def test_automatic_tax_from_the_jurisdiction_table(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    emu.control.configure(
        billing={
            "tax_jurisdictions": {
                "US-CA": {"percentage": 7.25, "display_name": "CA sales tax"},
                "DE": {"percentage": 19, "tax_type": "vat"},
            }
        }
    )
    ca = customer(client, address={"country": "US", "state": "CA", "postal_code": "94107"})
    inv = _invoice(client, ca.id, 10000, automatic_tax={"enabled": True})
    assert inv.automatic_tax.status == "complete"
    assert (inv.total, inv.total_taxes[0].taxability_reason) == (10725, "standard_rated")
    texas = customer(client, address={"country": "US", "state": "TX"})
    assert _invoice(client, texas.id, 10000, automatic_tax={"enabled": True}).total == 10000
    inclusive_price = price(client, 11900, interval=None, tax_behavior="inclusive")
    de = customer(client, address={"country": "DE"})
    client.v1.invoice_items.create(
        params={"customer": de.id, "pricing": {"price": inclusive_price.id}}
    )
    de_inv = client.v1.invoices.create(
        params={
            "customer": de.id,
            "pending_invoice_items_behavior": "include",
            "automatic_tax": {"enabled": True},
        }
    )
    assert (de_inv.total, de_inv.total_excluding_tax) == (11900, 10000)

    nowhere = customer(client)
    draft = _invoice(client, nowhere.id, 5000, automatic_tax={"enabled": True})
    assert draft.automatic_tax.status == "requires_location_inputs"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.invoices.finalize_invoice(draft.id)
    assert err.value.code == "customer_tax_location_invalid"
    failed = client.v1.invoices.retrieve(draft.id)
    assert failed.status == "draft" and failed.last_finalization_error.code == (
        "customer_tax_location_invalid"
    )
    assert "invoice.finalization_failed" in types_since(client, None)
    client.v1.customers.update(nowhere.id, params={"address": {"country": "DE"}})
    assert client.v1.invoices.finalize_invoice(draft.id).total == 5950
    with pytest.raises(stripe.InvalidRequestError) as sub_err:
        subscribe(client, customer(client).id, price(client).id, automatic_tax={"enabled": True})
    assert sub_err.value.code == "customer_tax_location_invalid"


def test_renewal_fails_to_finalize_without_a_location(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    emu.control.configure(billing={"tax_jurisdictions": {"FR": {"percentage": 20}}})
    c = clock(client)
    cus = customer(client, clock_id=c.id, address={"country": "FR"})
    sub = subscribe(
        client,
        cus.id,
        price(client, 1000, tax_behavior="exclusive").id,
        automatic_tax={"enabled": True},
    )
    assert client.v1.invoices.retrieve(sub.latest_invoice).amount_paid == 1200
    client.v1.customers.update(cus.id, params={"address": ""})
    advance(client, c.id, T0 + 31 * DAY + 7200)
    renewal = invoices_of(client, sub.id)[-1]
    assert renewal.status == "draft" and renewal.last_finalization_error is not None
    assert "invoice.finalization_failed" in types_since(client, None)


def test_credit_balance_pays_first_and_returns_on_void(client: stripe.StripeClient) -> None:
    cus = customer(client, balance=-700)
    inv = client.v1.invoices.finalize_invoice(_invoice(client, cus.id, 1000).id)
    assert (inv.starting_balance, inv.ending_balance, inv.amount_due) == (-700, 0, 300)
    assert client.v1.customers.retrieve(cus.id).balance == 0
    txns = client.v1.customers.balance_transactions.list(cus.id).data
    assert (txns[0].type, txns[0].amount, txns[0].invoice) == ("applied_to_invoice", 700, inv.id)
    client.v1.invoices.void_invoice(inv.id)
    assert client.v1.customers.retrieve(cus.id).balance == -700
    assert client.v1.customers.balance_transactions.list(cus.id).data[0].type == (
        "unapplied_from_invoice"
    )
    covered = client.v1.invoices.finalize_invoice(_invoice(client, cus.id, 500).id)
    assert (covered.status, covered.amount_due, covered.ending_balance) == ("paid", 0, -200)


def test_preview_of_a_new_subscription_with_a_coupon(client: stripe.StripeClient) -> None:
    cus = customer(client)
    p = price(client, 4000)
    coupon = client.v1.coupons.create(params={"percent_off": 10})
    preview = client.v1.invoices.create_preview(
        params={
            "customer": cus.id,
            "subscription_details": {"items": [{"price": p.id}]},
            "discounts": [{"coupon": coupon.id}],
        }
    )
    assert preview.id.startswith("upcoming_in_") and preview.total == 3600
    assert client.v1.coupons.retrieve(coupon.id).times_redeemed == 0  # a preview redeems nothing
    assert client.v1.invoices.list().data == []
