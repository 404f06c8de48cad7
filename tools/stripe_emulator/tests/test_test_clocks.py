"""Test clocks: the resource, asynchronous advances and their limits, a year of renewals."""

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
    price,
    subscribe,
    wait_ready,
)


def test_clock_resource_and_asynchronous_advance(client: stripe.StripeClient) -> None:
    c = client.v1.test_helpers.test_clocks.create(params={"frozen_time": T0, "name": "q1"})
    assert_fixture_keys(c, "test_helpers.test_clock")
    assert (c.status, c.frozen_time, c.name, c.status_details.to_dict()) == ("ready", T0, "q1", {})
    moving = client.v1.test_helpers.test_clocks.advance(c.id, params={"frozen_time": T0 + DAY})
    assert moving.status == "advancing"
    assert moving.status_details.advancing.target_frozen_time == T0 + DAY
    wait_ready(client, c.id)
    ready = advance(client, c.id, T0 + 2 * DAY)
    assert ready.frozen_time == T0 + 2 * DAY
    kinds = [e.type for e in reversed(client.v1.events.list().data)]
    assert kinds == [
        "test_helpers.test_clock.created",
        "test_helpers.test_clock.advancing",
        "test_helpers.test_clock.ready",
        "test_helpers.test_clock.advancing",
        "test_helpers.test_clock.ready",
    ]
    other = clock(client)
    assert [x.id for x in client.v1.test_helpers.test_clocks.list().data] == [other.id, c.id]
    assert client.v1.test_helpers.test_clocks.retrieve(c.id).id == c.id


def test_advance_limits(client: stripe.StripeClient) -> None:
    c = clock(client)
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.test_helpers.test_clocks.advance(c.id, params={"frozen_time": T0 - 1})
    assert err.value.param == "frozen_time"
    with pytest.raises(stripe.InvalidRequestError):  # two years without subscriptions
        client.v1.test_helpers.test_clocks.advance(c.id, params={"frozen_time": T0 + 731 * DAY + 1})
    cus = customer(client, clock_id=c.id)
    subscribe(client, cus.id, price(client, interval="week").id)
    subscribe(client, cus.id, price(client, interval="month").id)
    with pytest.raises(stripe.InvalidRequestError):  # two intervals of the shortest (a week)
        client.v1.test_helpers.test_clocks.advance(c.id, params={"frozen_time": T0 + 15 * DAY})
    advance(client, c.id, T0 + 14 * DAY)


def test_customers_on_a_clock_and_deletion(client: stripe.StripeClient) -> None:
    c = clock(client)
    cus = customer(client, clock_id=c.id)
    other = customer(client)
    assert cus.test_clock == c.id
    assert [x.id for x in client.v1.customers.list(params={"test_clock": c.id}).data] == [cus.id]
    sub = subscribe(client, cus.id, price(client).id)
    assert sub.test_clock == c.id
    inv = client.v1.invoices.retrieve(sub.latest_invoice)
    assert inv.test_clock == c.id and inv.created == T0
    deleted = client.v1.test_helpers.test_clocks.delete(c.id)
    assert_fixture_keys(deleted, "deleted_test_helpers.test_clock")
    for gone in (
        lambda: client.v1.customers.retrieve(cus.id),
        lambda: client.v1.subscriptions.retrieve(sub.id),
        lambda: client.v1.invoices.retrieve(inv.id),
        lambda: client.v1.test_helpers.test_clocks.retrieve(c.id),
    ):
        with pytest.raises(stripe.InvalidRequestError):
            gone()
    assert client.v1.customers.retrieve(other.id).id == other.id


def test_attach_an_existing_customer(client: stripe.StripeClient) -> None:
    cus = customer(client)
    c = client.v1.test_helpers.test_clocks.create(params={"frozen_time": T0, "customer": cus.id})
    assert client.v1.customers.retrieve(cus.id).test_clock == c.id


def test_a_year_of_monthly_renewals_with_a_failed_and_recovered_payment(
    client: stripe.StripeClient,
) -> None:
    c = clock(client)
    cus = customer(client, clock_id=c.id)
    good = client.v1.customers.retrieve(cus.id).invoice_settings.default_payment_method
    sub = subscribe(client, cus.id, price(client, 2000).id)
    for month in range(1, 13):
        end = client.v1.subscriptions.retrieve(sub.id).items.data[0].current_period_end
        if month == 5:  # the card starts failing before the fifth renewal
            attach_default(client, cus.id, "pm_card_chargeDeclinedInsufficientFunds")
        advance(client, c.id, end + 2 * 3600)
        if month == 5:
            failed = invoices_of(client, sub.id)[-1]
            assert (failed.status, failed.attempt_count) == ("open", 1)
            assert failed.next_payment_attempt == failed.status_transitions.finalized_at + DAY
            assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"
            client.v1.customers.update(
                cus.id, params={"invoice_settings": {"default_payment_method": good}}
            )
            advance(client, c.id, failed.next_payment_attempt + 60)
            recovered = client.v1.invoices.retrieve(failed.id)
            assert (recovered.status, recovered.attempt_count) == ("paid", 2)
            assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    invoices = invoices_of(client, sub.id)
    assert len(invoices) == 13
    assert all(i.status == "paid" and i.amount_paid == 2000 for i in invoices)
    assert [i.billing_reason for i in invoices] == ["subscription_create"] + [
        "subscription_cycle"
    ] * 12
    periods = [(i.period_start, i.period_end) for i in invoices[1:]]
    assert periods[0][0] == T0 + 31 * DAY and periods[-1][1] == T0 + 365 * DAY + 31 * DAY
    charges = client.v1.charges.list(params={"customer": cus.id, "limit": 100}).data
    assert sorted(ch.status for ch in charges) == ["failed"] + ["succeeded"] * 13
    final = client.v1.subscriptions.retrieve(sub.id)
    assert final.status == "active" and final.items.data[0].current_period_start == T0 + 365 * DAY
    assert client.v1.customers.retrieve(cus.id).delinquent is False
