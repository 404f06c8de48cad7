"""Billing events reach webhook endpoints in Stripe's order (research A.13), signed and
through the same delivery machinery and faults as every other event."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import stripe

from stripe_emulator.config import Config
from stripe_emulator.testing import EmulatorHandle
from stripe_emulator.tests.billing_helpers import (
    DAY,
    T0,
    advance,
    attach_default,
    clock,
    customer,
    price,
    subscribe,
)
from stripe_emulator.tests.test_webhooks import WEBHOOK_KEYS, Receiver, wait_for

BILLING = ("customer.subscription.", "invoice.", "payment_intent.", "charge.")


@pytest.fixture
def receiver(emu: EmulatorHandle) -> Iterator[Receiver]:
    emu.control.configure(webhook_retry_base_s=0.05, webhook_retry_max_s=0.2, webhook_timeout_s=2.0)
    dispatcher = emu.app.services["webhooks"]
    emu.call(setattr, dispatcher, "per_endpoint", 1)  # one at a time: arrival order is send order
    r = Receiver()
    yield r
    r.close()
    emu.call(setattr, dispatcher, "per_endpoint", 16)
    defaults = Config().to_dict()
    emu.control.configure(**{k: defaults[k] for k in WEBHOOK_KEYS})


def _endpoint(client: stripe.StripeClient, url: str) -> str:
    endpoint = client.v1.webhook_endpoints.create(params={"url": url, "enabled_events": ["*"]})
    return str(endpoint.secret)


def _delivered(receiver: Receiver, secret: str) -> list[str]:
    out = []
    for headers, body in receiver.received():
        event = stripe.Webhook.construct_event(body, headers["Stripe-Signature"], secret)
        if event.type.startswith(BILLING) and event.type != "invoice.upcoming":
            out.append(event.type)
    return out


def _stored(client: stripe.StripeClient) -> list[str]:
    events = reversed(client.v1.events.list(params={"limit": 100}).data)
    return [e.type for e in events if e.type.startswith(BILLING) and e.type != "invoice.upcoming"]


def _settle(
    client: stripe.StripeClient,
    receiver: Receiver,
    secret: str,
    expected: Callable[[list[str]], bool],
) -> list[str]:
    got: list[str] = wait_for(
        lambda: (seen := _delivered(receiver, secret)) and expected(seen) and seen,
        timeout=20,
        what="billing webhooks",
    )
    return got


def test_create_and_failed_renewal_arrive_in_order(
    client: stripe.StripeClient, receiver: Receiver
) -> None:
    secret = _endpoint(client, receiver.url)
    c = clock(client)
    cus = customer(client, clock_id=c.id)
    sub = subscribe(client, cus.id, price(client).id)
    attach_default(client, cus.id, "pm_card_chargeDeclined")
    advance(client, c.id, T0 + 31 * DAY + 2 * 3600)
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    stored = _stored(client)
    got = _settle(client, receiver, secret, lambda got: len(got) >= len(stored))
    assert got == stored
    assert got == [
        # A.13 (1), paid at once
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
        # A.13 (3)
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


def test_billing_events_take_the_webhook_faults(
    emu: EmulatorHandle, client: stripe.StripeClient, receiver: Receiver
) -> None:
    secret = _endpoint(client, receiver.url)
    emu.control.faults(webhook_duplicate_rate=1.0)
    cus = customer(client)
    subscribe(client, cus.id, price(client).id)
    stored = _stored(client)
    got = _settle(client, receiver, secret, lambda got: len(got) >= 2 * len(stored))
    assert sorted(got) == sorted(stored * 2)
