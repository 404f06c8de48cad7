"""Billing meters: meters, meter events and their validation, adjustments, summaries, and
metered items invoiced at period end."""

from __future__ import annotations

from typing import Any

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
    subscribe,
)


def _meter(
    client: stripe.StripeClient, name: str = "api_call", formula: str = "sum", **extra: Any
) -> Any:
    return client.v1.billing.meters.create(
        params={
            "display_name": name,
            "event_name": name,
            "default_aggregation": {"formula": formula},
            **extra,
        }
    )


def _event(
    client: stripe.StripeClient,
    cus: str,
    value: str | None = "1",
    name: str = "api_call",
    **extra: Any,
) -> Any:
    payload = {"stripe_customer_id": cus}
    if value is not None:
        payload["value"] = value
    return client.v1.billing.meter_events.create(
        params={"event_name": name, "payload": payload, **extra}
    )


def test_meter_resource(client: stripe.StripeClient) -> None:
    meter = _meter(
        client,
        customer_mapping={"type": "by_id", "event_payload_key": "cus"},
        value_settings={"event_payload_key": "tokens"},
    )
    assert_fixture_keys(meter, "billing.meter")
    assert meter.customer_mapping.event_payload_key == "cus" and meter.status == "active"
    with pytest.raises(stripe.InvalidRequestError):  # one active meter per event name
        _meter(client)
    renamed = client.v1.billing.meters.update(meter.id, params={"display_name": "API"})
    assert renamed.display_name == "API"
    off = client.v1.billing.meters.deactivate(meter.id)
    assert off.status == "inactive" and off.status_transitions.deactivated_at is not None
    assert client.v1.billing.meters.list(params={"status": "active"}).data == []
    assert client.v1.billing.meters.reactivate(meter.id).status == "active"
    kinds = [e.type for e in reversed(client.v1.events.list().data)]
    assert kinds == [
        "billing.meter.created",
        "billing.meter.updated",
        "billing.meter.deactivated",
        "billing.meter.reactivated",
    ]


def test_meter_event_validation(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    meter = _meter(client)
    cus = customer(client)
    now = emu.control.now()
    ev = _event(client, cus.id, "3", identifier="req-1", timestamp=now - 10)
    assert_fixture_keys(ev, "billing.meter_event")
    assert (ev.identifier, ev.timestamp, ev.payload["value"]) == ("req-1", now - 10, "3")
    cases = [
        ({"identifier": "req-1"}, "duplicate_meter_event"),
        ({"timestamp": now + 3600}, "timestamp_in_future"),
        ({"timestamp": now - 36 * DAY}, "timestamp_too_far_in_past"),
    ]
    for extra, code in cases:
        with pytest.raises(stripe.InvalidRequestError) as err:
            _event(client, cus.id, "1", **extra)
        assert err.value.code == code
    with pytest.raises(stripe.InvalidRequestError) as err:
        _event(client, "cus_nobody")
    assert err.value.code == "meter_event_customer_not_found"
    with pytest.raises(stripe.InvalidRequestError) as err:
        _event(client, cus.id, None)
    assert err.value.code == "meter_event_value_not_found"
    with pytest.raises(stripe.InvalidRequestError) as err:
        _event(client, cus.id, "lots")
    assert err.value.code == "meter_event_invalid_value"
    with pytest.raises(stripe.InvalidRequestError) as err:
        _event(client, cus.id, name="unknown_event")
    assert err.value.code == "meter_event_no_meter"
    _event(client, cus.id, "1", timestamp=now + 299)  # up to 5 minutes ahead is fine
    client.v1.billing.meters.deactivate(meter.id)
    with pytest.raises(stripe.InvalidRequestError) as err:
        _event(client, cus.id)
    assert err.value.code == "archived_meter"


def test_adjustments_and_summaries(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    meter = _meter(client)
    last = _meter(client, "seats", "last")
    count = _meter(client, "logins", "count")
    cus = customer(client)
    hour = (emu.control.now() // 3600 - 2) * 3600
    for i, value in enumerate(("5", "7", "2.5")):
        _event(client, cus.id, value, identifier=f"e{i}", timestamp=hour + 60 * i)
        _event(client, cus.id, value, name="seats", timestamp=hour + 60 * i)
        _event(client, cus.id, None, name="logins", timestamp=hour + 3600 + i)
    window = {"customer": cus.id, "start_time": hour, "end_time": hour + 7200}
    (total,) = client.v1.billing.meters.event_summaries.list(meter.id, params=window).data
    assert_fixture_keys(total, "billing.meter_event_summary")
    assert total.aggregated_value == 14.5
    assert (
        client.v1.billing.meters.event_summaries.list(last.id, params=window)
        .data[0]
        .aggregated_value
        == 2.5
    )
    hourly = client.v1.billing.meters.event_summaries.list(
        count.id, params={**window, "value_grouping_window": "hour"}
    ).data
    assert [(s.start_time, s.aggregated_value) for s in hourly] == [(hour + 3600, 3.0)]
    adjustment = client.v1.billing.meter_event_adjustments.create(
        params={"event_name": "api_call", "type": "cancel", "cancel": {"identifier": "e1"}}
    )
    assert_fixture_keys(adjustment, "billing.meter_event_adjustment")
    assert adjustment.status == "complete"
    (total,) = client.v1.billing.meters.event_summaries.list(meter.id, params=window).data
    assert total.aggregated_value == 7.5
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.billing.meters.event_summaries.list(
            meter.id, params={**window, "start_time": hour + 30}
        )
    assert err.value.param == "start_time"
    emu.control.advance(seconds=DAY + 60)
    with pytest.raises(stripe.InvalidRequestError) as err:  # only within 24 hours
        client.v1.billing.meter_event_adjustments.create(
            params={"event_name": "api_call", "cancel": {"identifier": "e2"}}
        )
    assert "24 hours" in str(err.value.user_message)


def test_metered_items_are_invoiced_at_period_end(client: stripe.StripeClient) -> None:
    meter = _meter(client)
    c = clock(client)
    cus = customer(client, clock_id=c.id)
    product = client.v1.products.create(params={"name": "API"})
    per_call = client.v1.prices.create(
        params={
            "currency": "usd",
            "unit_amount": 5,
            "product": product.id,
            "recurring": {"interval": "month", "usage_type": "metered", "meter": meter.id},
        }
    )
    base = client.v1.prices.create(
        params={
            "currency": "usd",
            "unit_amount": 1000,
            "product": product.id,
            "recurring": {"interval": "month"},
        }
    )
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.subscriptions.create(
            params={"customer": cus.id, "items": [{"price": per_call.id, "quantity": 2}]}
        )
    assert err.value.param == "items[0][quantity]"
    sub = client.v1.subscriptions.create(
        params={"customer": cus.id, "items": [{"price": base.id}, {"price": per_call.id}]}
    )
    first = client.v1.invoices.retrieve(sub.latest_invoice)
    assert first.total == 1000  # usage is billed in arrears
    advance(client, c.id, T0 + 25 * DAY)  # usage is reported on the customer's clock
    _event(client, cus.id, "120", timestamp=T0 + 5 * DAY)
    _event(client, cus.id, "80", timestamp=T0 + 20 * DAY)
    advance(client, c.id, T0 + 31 * DAY + 60)  # renewal drafted; not yet finalized
    _event(client, cus.id, "100", timestamp=T0 + 31 * DAY - 10)  # late, inside the period
    _event(client, cus.id, "1000", timestamp=T0 + 31 * DAY + 30)  # the next period's
    advance(client, c.id, T0 + 31 * DAY + 7200)
    renewal = invoices_of(client, sub.id)[-1]
    metered = [ln for ln in renewal.lines.data if ln.pricing.price_details.price == per_call.id]
    assert (metered[0].quantity, metered[0].amount) == (300, 1500)
    assert (metered[0].period.start, metered[0].period.end) == (T0, T0 + 31 * DAY)
    assert (renewal.status, renewal.total) == ("paid", 2500)


def test_tiered_metered_price(client: stripe.StripeClient) -> None:
    meter = _meter(client)
    c = clock(client)
    cus = customer(client, clock_id=c.id)
    product = client.v1.products.create(params={"name": "Calls"})
    tiered = client.v1.prices.create(
        params={
            "currency": "usd",
            "product": product.id,
            "billing_scheme": "tiered",
            "tiers_mode": "graduated",
            "tiers": [
                {"up_to": 100, "unit_amount": 0},
                {"up_to": "inf", "unit_amount": 2, "flat_amount": 500},
            ],
            "recurring": {"interval": "month", "usage_type": "metered", "meter": meter.id},
        }
    )
    sub = subscribe(client, cus.id, tiered.id)
    advance(client, c.id, T0 + 2 * DAY)
    _event(client, cus.id, "250", timestamp=T0 + DAY)
    advance(client, c.id, T0 + 31 * DAY + 7200)
    renewal = invoices_of(client, sub.id)[-1]
    assert renewal.total == 500 + 150 * 2
