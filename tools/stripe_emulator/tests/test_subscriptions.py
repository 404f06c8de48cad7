"""Subscriptions through stripe-python: creation paths, statuses, trials, cancellation."""

from __future__ import annotations

import pytest
import stripe

from stripe_emulator.testing import EmulatorHandle, assert_fixture_keys
from stripe_emulator.tests.billing_helpers import (
    DAY,
    T0,
    advance,
    attach_default,
    clock,
    customer,
    internal_keys,
    invoice_pi,
    invoices_of,
    last_event_id,
    price,
    subscribe,
    three_d_secure,
    types_since,
)

PAID_FLOW = [
    "customer.subscription.created",
    "invoice.created",
    "invoice.finalized",
    "payment_intent.created",
    "charge.succeeded",
    "payment_intent.succeeded",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice_payment.paid",
    "customer.subscription.updated",
]


def test_create_pays_the_first_invoice_like_a_one_off_payment(
    client: stripe.StripeClient,
) -> None:
    c = clock(client)
    cus = customer(client, clock_id=c.id)
    p = price(client, 1000)
    sub = subscribe(client, cus.id, p.id, metadata={"plan": "pro"})
    assert_fixture_keys(sub, "subscription")
    assert_fixture_keys(sub.items.data[0], "subscription_item")
    assert sub.status == "active" and sub.test_clock == c.id
    assert sub.billing_mode.type == "flexible"
    item = sub.items.data[0]
    assert (item.current_period_start, item.current_period_end) == (T0, T0 + 31 * DAY)
    assert item.plan.id == p.id and item.plan.object == "plan"

    inv = client.v1.invoices.retrieve(sub.latest_invoice)
    assert_fixture_keys(inv, "invoice")
    assert_fixture_keys(inv.lines.data[0], "line_item")
    assert (inv.status, inv.billing_reason, inv.amount_paid, inv.attempt_count) == (
        "paid",
        "subscription_create",
        1000,
        1,
    )
    assert inv.parent.type == "subscription_details"
    assert inv.parent.subscription_details.subscription == sub.id
    assert inv.parent.subscription_details.metadata.to_dict() == {"plan": "pro"}
    line = inv.lines.data[0]
    assert line.parent.type == "subscription_item_details"
    assert line.parent.subscription_item_details.subscription_item == item.id
    assert line.description == "1 \u00d7 Pro (at $10.00 / month)"
    assert (line.period.start, line.period.end) == (T0, T0 + 31 * DAY)
    assert inv.number.endswith("-0001") and inv.status_transitions.paid_at == T0

    (payment,) = client.v1.invoice_payments.list(params={"invoice": inv.id}).data
    assert_fixture_keys(payment, "invoice_payment")
    assert (payment.status, payment.amount_paid) == ("paid", 1000)
    pi = client.v1.payment_intents.retrieve(
        payment.payment.payment_intent, params={"expand": ["latest_charge.balance_transaction"]}
    )
    bt = pi.latest_charge.balance_transaction
    assert (pi.status, pi.amount, pi.customer) == ("succeeded", 1000, cus.id)
    assert (bt.type, bt.amount, bt.fee, bt.net) == ("charge", 1000, 59, 941)  # 2.9 % + 30
    assert types_since(client, None) == PAID_FLOW
    expanded = client.v1.invoices.retrieve(inv.id, params={"expand": ["payments"]})
    assert expanded.payments.data[0].id == payment.id


def test_default_incomplete_is_paid_by_the_client(
    client: stripe.StripeClient,
) -> None:
    cus = customer(client, pm=None)
    p = price(client, 2500)
    sub = subscribe(
        client,
        cus.id,
        p.id,
        payment_behavior="default_incomplete",
        expand=["latest_invoice.confirmation_secret"],
    )
    assert sub.status == "incomplete"
    secret = sub.latest_invoice.confirmation_secret
    assert secret.type == "payment_intent" and "_secret_" in secret.client_secret
    pi_id = invoice_pi(client, sub.latest_invoice.id)
    assert client.v1.payment_intents.retrieve(pi_id).status == "requires_payment_method"
    client.v1.payment_intents.confirm(pi_id, params={"payment_method": "pm_card_visa"})
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    # research A.13 (1)
    assert types_since(client, None) == PAID_FLOW


def test_declined_first_payment_leaves_it_incomplete_then_expires(
    client: stripe.StripeClient,
) -> None:
    c = clock(client)
    cus = customer(client, pm="pm_card_chargeDeclined", clock_id=c.id)
    p = price(client)
    sub = subscribe(client, cus.id, p.id)
    assert sub.status == "incomplete"
    inv = client.v1.invoices.retrieve(sub.latest_invoice)
    assert (inv.status, inv.attempt_count, inv.attempted) == ("open", 1, True)
    assert inv.next_payment_attempt is None  # the first invoice expires, it is not retried
    marker = last_event_id(client)
    advance(client, c.id, T0 + 23 * 3600 - 60)
    assert client.v1.subscriptions.retrieve(sub.id).status == "incomplete"
    advance(client, c.id, T0 + 23 * 3600 + 1)
    expired = client.v1.subscriptions.retrieve(sub.id)
    assert expired.status == "incomplete_expired" and expired.canceled_at is not None
    assert client.v1.invoices.retrieve(inv.id).status == "void"
    # research A.13 (6): the invoice is voided, then the subscription expires
    assert types_since(client, marker) == [
        "payment_intent.canceled",
        "invoice.voided",
        "customer.subscription.updated",
    ]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.update(sub.id, params={"description": "again"})


def test_incomplete_becomes_active_when_paid_within_23_hours(
    client: stripe.StripeClient,
) -> None:
    cus = customer(client, pm="pm_card_chargeDeclinedInsufficientFunds")
    sub = subscribe(client, cus.id, price(client).id)
    assert sub.status == "incomplete"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.update(sub.id, params={"description": "not while incomplete"})
    good = client.v1.payment_methods.attach("pm_card_visa", params={"customer": cus.id})
    paid = client.v1.invoices.pay(sub.latest_invoice, params={"payment_method": good.id})
    assert paid.status == "paid" and paid.attempt_count == 1  # manual retries do not count
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"


def test_error_if_incomplete_refuses_and_creates_nothing(client: stripe.StripeClient) -> None:
    cus = customer(client, pm="pm_card_chargeDeclined")
    with pytest.raises(stripe.CardError) as err:
        subscribe(client, cus.id, price(client).id, payment_behavior="error_if_incomplete")
    assert err.value.http_status == 402 and err.value.code == "card_declined"
    assert client.v1.subscriptions.list(params={"status": "all"}).data == []
    assert client.v1.invoices.list().data == []
    with pytest.raises(stripe.InvalidRequestError):
        subscribe(client, cus.id, price(client).id, payment_behavior="pending_if_incomplete")


def test_three_d_secure_on_the_first_payment(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    cus = customer(client, pm="pm_card_threeDSecure2Required")
    sub = subscribe(client, cus.id, price(client).id)
    assert sub.status == "incomplete"
    pi_id = invoice_pi(client, sub.latest_invoice)
    assert client.v1.payment_intents.retrieve(pi_id).status == "requires_action"
    assert "invoice.payment_action_required" in types_since(client, None)
    three_d_secure(emu, pi_id, "pass")
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    assert client.v1.invoices.retrieve(sub.latest_invoice).status == "paid"


def test_trial_then_first_paid_period(client: stripe.StripeClient) -> None:
    c = clock(client)
    cus = customer(client, clock_id=c.id)
    p = price(client, 1500)
    sub = subscribe(client, cus.id, p.id, trial_period_days=14)
    assert sub.status == "trialing" and sub.trial_end == T0 + 14 * DAY
    assert sub.items.data[0].current_period_end == T0 + 14 * DAY
    first = client.v1.invoices.retrieve(sub.latest_invoice)
    assert (first.status, first.total, first.lines.data[0].description) == (
        "paid",
        0,
        "Trial period for Pro",
    )
    marker = last_event_id(client)
    advance(client, c.id, T0 + 11 * DAY - 1)
    assert "customer.subscription.trial_will_end" not in types_since(client, marker)
    advance(client, c.id, T0 + 11 * DAY)
    assert types_since(client, marker)[-1] == "customer.subscription.trial_will_end"
    marker = last_event_id(client)
    advance(client, c.id, T0 + 14 * DAY + 1800)
    active = client.v1.subscriptions.retrieve(sub.id)
    assert active.status == "active" and active.billing_cycle_anchor == T0 + 14 * DAY
    draft = client.v1.invoices.retrieve(active.latest_invoice)
    assert draft.status == "draft" and draft.automatically_finalizes_at == T0 + 14 * DAY + 3600
    advance(client, c.id, T0 + 14 * DAY + 3600)
    paid = client.v1.invoices.retrieve(active.latest_invoice)
    assert paid.status == "paid" and paid.status_transitions.finalized_at == T0 + 14 * DAY + 3600
    assert paid.amount_paid == 1500 and paid.billing_reason == "subscription_cycle"
    # research A.13 (4) then (2)
    assert types_since(client, marker) == [
        "customer.subscription.updated",
        "invoice.created",
        "invoice.finalized",
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice_payment.paid",
    ]


def test_short_trial_warns_at_once(client: stripe.StripeClient) -> None:
    c = clock(client)
    cus = customer(client, clock_id=c.id)
    subscribe(client, cus.id, price(client).id, trial_end=T0 + 2 * DAY)
    assert "customer.subscription.trial_will_end" in types_since(client, None)


@pytest.mark.parametrize(("behavior", "status"), [("pause", "paused"), ("cancel", "canceled")])
def test_trial_end_without_a_payment_method(
    client: stripe.StripeClient, behavior: str, status: str
) -> None:
    c = clock(client)
    cus = customer(client, pm=None, clock_id=c.id)
    sub = subscribe(
        client,
        cus.id,
        price(client).id,
        trial_period_days=3,
        trial_settings={"end_behavior": {"missing_payment_method": behavior}},
    )
    advance(client, c.id, T0 + 3 * DAY + 10)
    ended = client.v1.subscriptions.retrieve(sub.id)
    assert ended.status == status
    expected = (
        "customer.subscription.paused" if behavior == "pause" else ("customer.subscription.deleted")
    )
    assert types_since(client, None)[-1] == expected
    assert len(invoices_of(client, sub.id)) == 1  # only the trial's $0 invoice


def test_trial_with_default_incomplete_collects_a_payment_method(
    client: stripe.StripeClient,
) -> None:
    cus = customer(client, pm=None)
    sub = subscribe(
        client,
        cus.id,
        price(client).id,
        trial_period_days=7,
        payment_behavior="default_incomplete",
        payment_settings={"save_default_payment_method": "on_subscription"},
    )
    assert sub.status == "trialing" and sub.pending_setup_intent is not None
    si = client.v1.setup_intents.confirm(
        sub.pending_setup_intent, params={"payment_method": "pm_card_visa"}
    )
    after = client.v1.subscriptions.retrieve(sub.id)
    assert after.pending_setup_intent is None and after.default_payment_method == si.payment_method


def test_cancel_at_period_end(client: stripe.StripeClient) -> None:
    c = clock(client)
    cus = customer(client, clock_id=c.id)
    sub = subscribe(client, cus.id, price(client).id)
    marker = last_event_id(client)
    scheduled = client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    assert scheduled.status == "active" and scheduled.cancel_at_period_end
    assert scheduled.canceled_at == T0
    end = scheduled.items.data[0].current_period_end
    advance(client, c.id, end - 10)
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    advance(client, c.id, end + 10)
    done = client.v1.subscriptions.retrieve(sub.id)
    assert (done.status, done.ended_at, done.canceled_at) == ("canceled", end, T0)
    assert done.cancellation_details.reason == "cancellation_requested"
    # research A.13 (5): no renewal invoice, just the end
    assert types_since(client, marker) == [
        "customer.subscription.updated",
        "customer.subscription.deleted",
    ]
    assert len(invoices_of(client, sub.id)) == 1


def test_cancel_now_with_proration_and_final_invoice(client: stripe.StripeClient) -> None:
    c = clock(client)
    cus = customer(client, clock_id=c.id)
    sub = subscribe(client, cus.id, price(client, 3100).id)  # $31 for a 31-day January
    advance(client, c.id, T0 + 10 * DAY)
    canceled = client.v1.subscriptions.cancel(
        sub.id,
        params={
            "prorate": True,
            "invoice_now": True,
            "cancellation_details": {"comment": "moving"},
        },
    )
    assert canceled.status == "canceled" and canceled.ended_at == T0 + 10 * DAY
    assert canceled.cancellation_details.comment == "moving"
    final = client.v1.invoices.retrieve(invoices_of(client, sub.id)[-1].id)
    assert final.total == -2100  # 21 unused days of $31
    assert (final.status, final.amount_due, final.ending_balance) == ("paid", 0, -2100)
    assert client.v1.customers.retrieve(cus.id).balance == -2100
    assert types_since(client, None)[-1] == "customer.subscription.deleted"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.cancel(sub.id)


def test_future_billing_cycle_anchor_prorates_the_stub(client: stripe.StripeClient) -> None:
    c = clock(client, T0 + 14 * DAY)  # Jan 15
    cus = customer(client, clock_id=c.id)
    anchor = T0 + 31 * DAY  # Feb 1
    sub = subscribe(client, cus.id, price(client, 3100).id, billing_cycle_anchor=anchor)
    assert sub.items.data[0].current_period_end == anchor
    first = client.v1.invoices.retrieve(sub.latest_invoice)
    assert first.amount_paid == 1700  # 17 of January's 31 days
    free = subscribe(
        client,
        customer(client, clock_id=c.id).id,
        price(client, 3100).id,
        billing_cycle_anchor=anchor,
        proration_behavior="none",
    )
    assert client.v1.invoices.retrieve(free.latest_invoice).amount_paid == 0
    configured = subscribe(
        client,
        customer(client, clock_id=c.id).id,
        price(client).id,
        billing_cycle_anchor_config={"day_of_month": 1},
    )
    assert configured.billing_cycle_anchor == anchor


def test_send_invoice_subscription_goes_past_due(client: stripe.StripeClient) -> None:
    c = clock(client)
    cus = customer(client, pm=None, clock_id=c.id)
    sub = subscribe(
        client, cus.id, price(client).id, collection_method="send_invoice", days_until_due=7
    )
    assert sub.status == "active"
    inv = client.v1.invoices.retrieve(sub.latest_invoice)
    assert (inv.status, inv.due_date, inv.next_payment_attempt) == ("open", T0 + 7 * DAY, None)
    advance(client, c.id, T0 + 7 * DAY + 1)
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    assert "invoice.overdue" in types_since(client, None)
    client.v1.invoices.pay(inv.id, params={"paid_out_of_band": True})
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"


def test_pause_and_resume(client: stripe.StripeClient) -> None:
    c = clock(client)
    cus = customer(client, clock_id=c.id)
    sub = subscribe(client, cus.id, price(client, 3100).id)
    advance(client, c.id, T0 + 21 * DAY)
    paused = client.v1.subscriptions.pause(sub.id)
    assert paused.status == "paused"
    pending = client.v1.invoice_items.list(params={"customer": cus.id, "pending": True}).data
    assert [i.amount for i in pending] == [-1000]  # 10 unused days credited
    advance(client, c.id, T0 + 50 * DAY)
    assert len(invoices_of(client, sub.id)) == 1  # a paused subscription does not renew
    resumed = client.v1.subscriptions.resume(sub.id)
    assert resumed.status == "active" and resumed.billing_cycle_anchor == T0 + 50 * DAY
    last = invoices_of(client, sub.id)[-1]
    assert (last.status, last.total) == ("paid", 3100 - 1000)
    kinds = types_since(client, None)
    assert "customer.subscription.paused" in kinds and "customer.subscription.resumed" in kinds


def test_pause_collection_keeps_renewals_as_drafts(client: stripe.StripeClient) -> None:
    c = clock(client)
    cus = customer(client, clock_id=c.id)
    sub = subscribe(client, cus.id, price(client).id)
    client.v1.subscriptions.update(
        sub.id, params={"pause_collection": {"behavior": "keep_as_draft"}}
    )
    advance(client, c.id, T0 + 31 * DAY + 7200)
    renewal = invoices_of(client, sub.id)[-1]
    assert (renewal.status, renewal.auto_advance) == ("draft", False)
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    client.v1.subscriptions.update(sub.id, params={"pause_collection": ""})
    assert client.v1.subscriptions.retrieve(sub.id).pause_collection is None


def test_list_filters(client: stripe.StripeClient) -> None:
    c = clock(client)
    on_clock = customer(client, clock_id=c.id)
    other = customer(client)
    p1, p2 = price(client), price(client, 2000)
    a = subscribe(client, on_clock.id, p1.id)
    b = subscribe(client, other.id, p2.id)
    gone = subscribe(client, other.id, p1.id)
    client.v1.subscriptions.cancel(gone.id)
    ids = lambda **kw: [s.id for s in client.v1.subscriptions.list(params=kw).data]  # noqa: E731
    assert ids() == [b.id, a.id]  # canceled ones only when asked
    assert ids(status="all") == [gone.id, b.id, a.id]
    assert ids(status="canceled") == [gone.id]
    assert ids(customer=other.id) == [b.id]
    assert ids(price=p1.id, status="all") == [gone.id, a.id]
    assert ids(test_clock=c.id) == [a.id]


def test_customer_deletion_cancels_subscriptions(client: stripe.StripeClient) -> None:
    cus = customer(client)
    sub = subscribe(client, cus.id, price(client).id)
    client.v1.customers.delete(cus.id)
    assert client.v1.subscriptions.retrieve(sub.id).status == "canceled"


def test_restricted_keys_cover_billing(emu: EmulatorHandle) -> None:
    admin = emu.stripe_client()
    cus = customer(admin)
    p = price(admin)
    emu.control.restricted_key(
        "rk_test_billing_reader", {"subscriptions": "read", "customers": "read"}
    )
    reader = emu.stripe_client("rk_test_billing_reader")
    with pytest.raises(stripe.PermissionError) as err:
        reader.v1.subscriptions.create(params={"customer": cus.id, "items": [{"price": p.id}]})
    assert "rak_subscription_write" in str(err.value.user_message)
    sub = subscribe(admin, cus.id, p.id)
    assert reader.v1.subscriptions.retrieve(sub.id).id == sub.id
    with pytest.raises(stripe.PermissionError):
        reader.v1.invoices.retrieve(sub.latest_invoice)
    routes = emu.control.call("GET", "/_emulator/routes")["data"]
    billing = [
        r
        for r in routes
        if r.split()[1].startswith(
            ("/v1/subscriptions", "/v1/invoices", "/v1/prices", "/v1/billing", "/v1/test_helpers")
        )
    ]
    assert billing and all("perm=None" not in r for r in billing)


def test_subscription_pays_with_a_card_source(client: stripe.StripeClient) -> None:
    cus = client.v1.customers.create(params={"source": "tok_visa"})
    sub = subscribe(client, cus.id, price(client).id)
    assert sub.status == "active"
    pi = client.v1.payment_intents.retrieve(invoice_pi(client, sub.latest_invoice))
    assert pi.payment_method == cus.default_source


def test_default_payment_method_on_the_subscription_wins(client: stripe.StripeClient) -> None:
    cus = customer(client, pm="pm_card_chargeDeclined")
    good = client.v1.payment_methods.attach("pm_card_visa", params={"customer": cus.id})
    sub = subscribe(client, cus.id, price(client).id, default_payment_method=good.id)
    assert sub.status == "active"
    with pytest.raises(stripe.InvalidRequestError) as err:
        other = customer(client)
        attach = attach_default(client, other.id, "pm_card_visa")
        subscribe(client, cus.id, price(client).id, default_payment_method=attach)
    assert err.value.param == "default_payment_method"


def test_no_bookkeeping_leaks_into_answers_or_events(client: stripe.StripeClient) -> None:
    c = clock(client)
    cus = customer(client, clock_id=c.id)
    rate = client.v1.tax_rates.create(
        params={"display_name": "VAT", "percentage": 10, "inclusive": False}
    )
    coupon = client.v1.coupons.create(params={"percent_off": 5, "duration": "forever"})
    sub = subscribe(
        client,
        cus.id,
        price(client).id,
        default_tax_rates=[rate.id],
        discounts=[{"coupon": coupon.id}],
    )
    item = sub.items.data[0]
    client.v1.subscriptions.update(sub.id, params={"items": [{"id": item.id, "quantity": 3}]})
    advance(client, c.id, T0 + 31 * DAY + 7200)
    expanded = client.v1.subscriptions.retrieve(
        sub.id, params={"expand": ["latest_invoice.payments", "discounts", "customer"]}
    )
    assert internal_keys(expanded) == []
    assert internal_keys(client.v1.invoices.list(params={"subscription": sub.id})) == []
    assert internal_keys(client.v1.invoice_items.list()) == []
    for event in client.v1.events.list(params={"limit": 100}).data:
        assert internal_keys(event) == [], event.type


def test_legacy_plan_ids_and_idempotent_creation(client: stripe.StripeClient) -> None:
    plan = client.v1.plans.create(
        params={
            "id": "basic-monthly",
            "amount": 900,
            "currency": "usd",
            "interval": "month",
            "product": {"name": "Basic"},
        }
    )
    cus = customer(client)
    params = {"customer": cus.id, "items": [{"plan": plan.id}]}
    first = client.v1.subscriptions.create(params=params, options={"idempotency_key": "sub-1"})
    again = client.v1.subscriptions.create(params=params, options={"idempotency_key": "sub-1"})
    assert first.id == again.id and first.status == "active"
    assert first.items.data[0].plan.id == "basic-monthly"
    assert first.items.data[0].price.id == "basic-monthly"
    assert len(client.v1.subscriptions.list().data) == 1
    assert client.v1.invoices.retrieve(first.latest_invoice).amount_paid == 900
