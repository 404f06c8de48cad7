"""Helpers shared by the money-movement tests (balance, payouts, Connect, transfers)."""

from __future__ import annotations

from typing import Any

import stripe

from stripe_emulator.testing import EmulatorHandle

BANK = {
    "object": "bank_account",
    "country": "US",
    "currency": "usd",
    "routing_number": "110000000",
    "account_number": "000123456789",
    "account_holder_name": "Jane Austen",
    "account_holder_type": "individual",
}


def top_up(
    emu: EmulatorHandle,
    amount: int,
    currency: str = "usd",
    account: str | None = None,
    available: bool = True,
) -> dict[str, Any]:
    body: dict[str, Any] = {"amount": amount, "currency": currency, "available": available}
    if account is not None:
        body["account"] = account
    result: dict[str, Any] = emu.control.call("POST", "/_emulator/balance/top_up", body)
    return result


def amounts(balance: Any, which: str = "available") -> dict[str, int]:
    return {entry.currency: entry.amount for entry in getattr(balance, which)}


def platform_id(client: stripe.StripeClient) -> str:
    return client.v1.accounts.retrieve_current().id


def manual_payouts(client: stripe.StripeClient, account: str | None = None) -> None:
    """Switch an account (default: the platform) to manual payouts."""
    client.v1.accounts.update(
        account or platform_id(client),
        params={"settings": {"payouts": {"schedule": {"interval": "manual"}}}},
    )


# Stripe's test values that verify a US individual at once (docs.stripe.com/connect/testing):
# date of birth 1902-01-01, SSN last 4 0000, address line1 address_full_match.
ONBOARDED: dict[str, Any] = {
    "business_type": "individual",
    "business_profile": {"mcc": "5734", "url": "https://accessible.stripe.com"},
    "individual": {
        "first_name": "Jenny",
        "last_name": "Rosen",
        "email": "jenny@example.com",
        "phone": "0000000000",
        "dob": {"day": 1, "month": 1, "year": 1902},
        "address": {"line1": "address_full_match", "city": "South San Francisco",
                    "state": "CA", "postal_code": "94080"},
        "ssn_last_4": "0000",
    },
    "tos_acceptance": {"date": 1_700_000_000, "ip": "127.0.0.1"},
}  # fmt: skip


def connected(
    client: stripe.StripeClient,
    number: str | None = "000123456789",
    onboarded: bool = True,
    **extra: Any,
) -> stripe.Account:
    """A connected account; a custom one comes fully onboarded (active, payouts enabled) unless
    `onboarded=False`."""
    params: dict[str, Any] = {
        "type": "custom",
        "country": "US",
        "email": "seller@example.com",
        "capabilities": {"card_payments": {"requested": True}, "transfers": {"requested": True}},
        **extra,
    }
    if onboarded and params["type"] == "custom":
        params = {**ONBOARDED, **params}
    if number is not None:
        params["external_account"] = {**BANK, "account_number": number}
    return client.v1.accounts.create(params=params)


def as_account(acct: str) -> dict[str, Any]:
    return {"stripe_account": acct}
