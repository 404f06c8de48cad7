"""Shared helpers for the payments-group tests (SDK calls only)."""

from __future__ import annotations

from typing import Any

import stripe

from stripe_emulator.testing import EmulatorHandle


def pay(client: stripe.StripeClient, pm: str, amount: int = 1000, currency: str = "usd",
        **extra: Any) -> Any:  # fmt: skip
    params: dict[str, Any] = {
        "amount": amount,
        "currency": currency,
        "payment_method": pm,
        "confirm": True,
        **extra,
    }
    return client.v1.payment_intents.create(params=params)


def charge_with_bt(client: stripe.StripeClient, charge_id: str) -> Any:
    return client.v1.charges.retrieve(charge_id, params={"expand": ["balance_transaction"]})


def event_types(client: stripe.StripeClient, object_id: str) -> list[str]:
    """Types of the events whose object is `object_id`, oldest first."""
    events = client.v1.events.list(params={"limit": 100}).data
    return [e.type for e in reversed(events) if e.data.object.to_dict().get("id") == object_id]


def three_d_secure(emu: EmulatorHandle, pi_id: str, outcome: str) -> Any:
    return emu.control.call(
        "POST", f"/_emulator/payment_intents/{pi_id}/three_d_secure", {"outcome": outcome}
    )


def close_dispute(emu: EmulatorHandle, dp_id: str, outcome: str) -> Any:
    return emu.control.call("POST", f"/_emulator/disputes/{dp_id}/close", {"outcome": outcome})
