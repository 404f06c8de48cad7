"""Helpers for the Connect onboarding and payout tests: Stripe's test values as parameters."""

from __future__ import annotations

from typing import Any

import stripe

from stripe_emulator.tests.money_helpers import BANK, as_account

CAPS = {"card_payments": {"requested": True}, "transfers": {"requested": True}}
ADDRESS = {"city": "South San Francisco", "state": "CA", "postal_code": "94080"}
PROFILE = {"mcc": "5734", "url": "https://accessible.stripe.com"}
TOS = {"date": 1_700_000_000, "ip": "127.0.0.1"}


def person(
    dob: tuple[int, int, int] = (1901, 1, 1),
    line1: str = "address_full_match",
    **extra: Any,
) -> dict[str, Any]:
    """A person's parameters; the defaults verify after the emulator's verification delay."""
    year, month, day = dob
    params: dict[str, Any] = {
        "first_name": "Jenny",
        "last_name": "Rosen",
        "email": "jenny@example.com",
        "phone": "0000000000",
        "dob": {"day": day, "month": month, "year": year},
        "address": {"line1": line1, **ADDRESS},
        "ssn_last_4": "0000",
    }
    params.update(extra)
    return params


def custom_account(client: stripe.StripeClient, **params: Any) -> stripe.Account:
    return client.v1.accounts.create(
        params={"type": "custom", "country": "US", "capabilities": CAPS, **params}
    )


def individual_account(
    client: stripe.StripeClient, with_bank: bool = True, **individual: Any
) -> stripe.Account:
    """A custom US individual with every initial field; verification as `individual` says."""
    params: dict[str, Any] = {
        "business_type": "individual",
        "business_profile": PROFILE,
        "tos_acceptance": TOS,
        "individual": person(**individual),
    }
    if with_bank:
        params["external_account"] = BANK
    return custom_account(client, **params)


def reqs(acct: Any) -> dict[str, Any]:
    """The account's requirements as a plain dict."""
    result: dict[str, Any] = acct.requirements.to_dict()
    return result


def caps(acct: Any) -> dict[str, str]:
    result: dict[str, str] = acct.capabilities.to_dict()
    return result


def events(client: stripe.StripeClient, acct: str, prefix: str = "") -> list[stripe.Event]:
    """The connected account's events, oldest first."""
    found = client.v1.events.list(params={"limit": 100}, options=as_account(acct)).data
    return [e for e in reversed(found) if e.type.startswith(prefix)]


def previous(event: stripe.Event) -> dict[str, Any]:
    result: dict[str, Any] = event.data.to_dict().get("previous_attributes") or {}
    return result
