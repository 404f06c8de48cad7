"""Shared helpers for the Billing tests (SDK calls and the emulator's control API only)."""

from __future__ import annotations

import time
from typing import Any

import stripe

from stripe_emulator.testing import EmulatorHandle

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z: test clocks start here
DAY = 86_400


def clock(client: stripe.StripeClient, frozen_time: int = T0) -> Any:
    return client.v1.test_helpers.test_clocks.create(params={"frozen_time": frozen_time})


def advance(client: stripe.StripeClient, clock_id: str, frozen_time: int) -> Any:
    """Advance a test clock and wait (bounded) until it is ready again."""
    client.v1.test_helpers.test_clocks.advance(clock_id, params={"frozen_time": frozen_time})
    return wait_ready(client, clock_id)


def wait_ready(client: stripe.StripeClient, clock_id: str) -> Any:
    deadline = time.monotonic() + 60
    while True:
        current = client.v1.test_helpers.test_clocks.retrieve(clock_id)
        if current.status == "ready":
            return current
        if current.status == "internal_failure" or time.monotonic() > deadline:
            raise AssertionError(f"test clock {clock_id} did not become ready: {current.status}")
        time.sleep(0.02)


def customer(
    client: stripe.StripeClient,
    pm: str | None = "pm_card_visa",
    clock_id: str | None = None,
    **extra: Any,
) -> Any:
    """A customer (optionally on a test clock) whose default payment method is `pm`."""
    params: dict[str, Any] = {"email": "billing@example.com", **extra}
    if clock_id is not None:
        params["test_clock"] = clock_id
    if pm is not None:
        params["payment_method"] = pm
        params["invoice_settings"] = {"default_payment_method": pm}
    return client.v1.customers.create(params=params)


def attach_default(client: stripe.StripeClient, customer_id: str, pm: str) -> str:
    """Attach `pm` and make it the customer's invoice default; returns its id."""
    attached = client.v1.payment_methods.attach(pm, params={"customer": customer_id})
    client.v1.customers.update(
        customer_id, params={"invoice_settings": {"default_payment_method": attached.id}}
    )
    return str(attached.id)


def price(
    client: stripe.StripeClient,
    amount: int = 1000,
    interval: str | None = "month",
    currency: str = "usd",
    **extra: Any,
) -> Any:
    product = client.v1.products.create(params={"name": extra.pop("name", "Pro")})
    params: dict[str, Any] = {"currency": currency, "unit_amount": amount, "product": product.id}
    if interval is not None:
        params["recurring"] = {"interval": interval, **extra.pop("recurring", {})}
    params.update(extra)
    return client.v1.prices.create(params=params)


def subscribe(client: stripe.StripeClient, customer_id: str, price_id: str, **extra: Any) -> Any:
    return client.v1.subscriptions.create(
        params={"customer": customer_id, "items": [{"price": price_id}], **extra}
    )


def events(client: stripe.StripeClient, limit: int = 100) -> list[Any]:
    """Every event (up to `limit`), oldest first."""
    found: list[Any] = []
    page = client.v1.events.list(params={"limit": 100})
    while True:
        found.extend(page.data)
        if not page.has_more or len(found) >= limit:
            break
        page = client.v1.events.list(params={"limit": 100, "starting_after": page.data[-1].id})
    return list(reversed(found[:limit]))


def types_since(
    client: stripe.StripeClient,
    marker: str | None,
    prefixes: tuple[str, ...] = (
        "customer.subscription.",
        "invoice.",
        "payment_intent.",
        "charge.",
        "invoice_payment.",
        "invoiceitem.",
        "customer.discount.",
    ),
) -> list[str]:
    """Event types after the event `marker` (exclusive), oldest first, of these families."""
    evs = events(client, 1000)
    if marker is not None:
        ids = [e.id for e in evs]
        evs = evs[ids.index(marker) + 1 :]
    return [e.type for e in evs if e.type.startswith(prefixes)]


def last_event_id(client: stripe.StripeClient) -> str | None:
    page = client.v1.events.list(params={"limit": 1}).data
    return str(page[0].id) if page else None


def invoices_of(client: stripe.StripeClient, sub_id: str) -> list[Any]:
    """A subscription's invoices, oldest first."""
    page = client.v1.invoices.list(params={"subscription": sub_id, "limit": 100})
    return list(reversed(page.data))


def three_d_secure(emu: EmulatorHandle, pi_id: str, outcome: str = "pass") -> None:
    emu.control.call(
        "POST", f"/_emulator/payment_intents/{pi_id}/three_d_secure", {"outcome": outcome}
    )


def invoice_pi(client: stripe.StripeClient, invoice_id: str) -> str:
    """The PaymentIntent of an invoice (through its invoice payments)."""
    payments = client.v1.invoice_payments.list(params={"invoice": invoice_id}).data
    return str(payments[0].payment.payment_intent)


def internal_keys(obj: Any, path: str = "") -> list[str]:
    """Paths of any `_`-prefixed key (the emulator's bookkeeping) in an answer."""
    data = obj.to_dict() if hasattr(obj, "to_dict") else obj
    found: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if str(key).startswith("_"):
                found.append(f"{path}.{key}")
            found.extend(internal_keys(value, f"{path}.{key}"))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found.extend(internal_keys(value, f"{path}[{i}]"))
    return found
