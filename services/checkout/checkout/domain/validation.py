"""What checkout accepts for a new payment, checked before anything is stored or sent.

Stripe refuses some inputs only once asked (an amount under its minimum, a 51st metadata
key); checked here first, they are INVALID_ARGUMENT naming the field, with nothing stored and
nothing charged, instead of a payment stuck half-made. Sources: Stripe's docs (currencies:
minimum and maximum charge amounts; metadata: 50 keys, keys up to 40 characters, values up to
500; PaymentIntent description up to 1,000), and checkout's own columns and events.

Messages never repeat what was sent: a card number pasted as payment_method must not travel
back to the caller, into a log or to Stripe.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

__all__ = [
    "CURRENCIES",
    "MAX_AMOUNT",
    "MAX_CUSTOMER_REF",
    "MAX_DESCRIPTION",
    "MAX_EMAIL",
    "MAX_METADATA_KEYS",
    "MAX_RETURN_URL",
    "METADATA_KEY_MAX",
    "METADATA_VALUE_MAX",
    "MIN_AMOUNT",
    "RESERVED_METADATA_KEYS",
    "RESERVED_METADATA_PREFIX",
    "minimum_amount",
    "return_url_problems",
    "validate_new_payment",
]

CURRENCIES = frozenset(
    "usd eur gbp jpy cad aud chf sek nok dkk pln czk huf nzd sgd hkd mxn brl inr krw "
    "zar aed ils thb myr php idr try ron bgn".split()
)
# Stripe's API caps every amount at eight digits of minor units.
MAX_AMOUNT = 99_999_999
# Stripe's minimum charge per presentment currency, in minor units (its currency table).
MIN_AMOUNT: Mapping[str, int] = {
    "usd": 50, "eur": 50, "gbp": 30, "jpy": 50, "cad": 50, "aud": 50, "chf": 50, "nzd": 50,
    "sgd": 50, "brl": 50, "inr": 50, "dkk": 250, "nok": 300, "sek": 300, "pln": 200,
    "czk": 1500, "huf": 17500, "hkd": 400, "mxn": 1000, "myr": 200, "thb": 1000, "aed": 200,
    "ron": 200, "bgn": 100,
    # Not in Stripe's table: it requires the equivalent of 0.50 USD at the day's rate. These
    # floors stay above that at any recent rate, so Stripe never refuses what passes here.
    "krw": 1000, "zar": 1000, "ils": 300, "php": 3000, "idr": 1_000_000, "try": 2500,
}  # fmt: skip
# Stripe's metadata limits; checkout adds its own keys to every PaymentIntent.
RESERVED_METADATA_PREFIX = "payplane_"
RESERVED_METADATA_KEYS = ("payplane_payment_id", "payplane_customer_ref")
MAX_METADATA_KEYS = 50 - len(RESERVED_METADATA_KEYS)  # what a caller may send
METADATA_KEY_MAX = 40
METADATA_VALUE_MAX = 500
# customer_ref is stored in a 255-character column, travels in every event and goes to
# Stripe as a metadata value (500 at most): 255 bounds all three.
MAX_CUSTOMER_REF = 255
MAX_DESCRIPTION = 1_000
MAX_EMAIL = 320
MAX_RETURN_URL = 2_048

# A PaymentMethod id (pm_1Nx..., or a documented test id such as pm_card_visa).
_PAYMENT_METHOD = re.compile(r"pm_[A-Za-z0-9_]{1,96}")
_CARD_LIKE = re.compile(r"[0-9][0-9 \-]{10,30}[0-9]")
_COUNTRY = re.compile(r"[A-Za-z]{2}")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s\x00-\x1f\x7f]+")
_EARLIEST, _LATEST = 0.0, 253_402_300_799.0  # 1970 to the end of protobuf's Timestamp


def minimum_amount(currency: str) -> int:
    return MIN_AMOUNT.get(currency, 50)


def _fmt(amount: int, currency: str) -> str:
    return f"{amount} ({currency} minor units)"


def validate_new_payment(
    amount: int,
    currency: str,
    payment_method: str,
    metadata: Mapping[str, str],
    *,
    customer_ref: str | None = None,
    description: str = "",
    email: str = "",
    ip_address: str = "",
    ip_country: str = "",
    shipping_country: str = "",
    return_url: str = "",
    customer_created_at: float | None = None,
) -> list[str]:
    """Every problem with a new payment's input, as "field: rule" strings (empty: valid).

    customer_ref is checked only when given (None: the caller checks it elsewhere).
    """
    problems: list[str] = []
    if currency not in CURRENCIES:
        problems.append("amount.currency: unknown or unsupported currency")
    if amount <= 0:
        problems.append("amount.amount_minor: must be a positive number of minor units")
    elif amount > MAX_AMOUNT:
        problems.append(f"amount.amount_minor: at most {MAX_AMOUNT}")
    elif currency in CURRENCIES and amount < minimum_amount(currency):
        problems.append(
            f"amount.amount_minor: Stripe's minimum in {currency} is "
            + _fmt(minimum_amount(currency), currency)
        )
    problems += _payment_method(payment_method)
    problems += _metadata(metadata)
    if customer_ref is not None:
        if not customer_ref:
            problems.append("customer_ref: required")
        elif len(customer_ref) > MAX_CUSTOMER_REF:
            problems.append(f"customer_ref: at most {MAX_CUSTOMER_REF} characters")
        elif _has_control(customer_ref):
            problems.append("customer_ref: must not contain control characters")
    if len(description) > MAX_DESCRIPTION:
        problems.append(f"description: at most {MAX_DESCRIPTION} characters")
    elif "\x00" in description:
        problems.append("description: must not contain NUL characters")
    if len(email) > MAX_EMAIL or _has_control(email):
        problems.append(f"email: at most {MAX_EMAIL} characters, no control characters")
    if ip_address and not _is_ip(ip_address):
        problems.append("ip_address: an IPv4 or IPv6 address")
    for name, value in (("ip_country", ip_country), ("shipping_country", shipping_country)):
        if value and not _COUNTRY.fullmatch(value):
            problems.append(f"{name}: an ISO 3166-1 alpha-2 code")
    problems += return_url_problems(return_url)
    if customer_created_at is not None and not _EARLIEST <= customer_created_at <= _LATEST:
        problems.append("customer_created_at: out of range (from 1970-01-01 to 9999-12-31)")
    return problems


def return_url_problems(return_url: str) -> list[str]:
    if return_url and (len(return_url) > MAX_RETURN_URL or not _URL.fullmatch(return_url)):
        return [f"return_url: an absolute URL of at most {MAX_RETURN_URL} characters"]
    return []


def _payment_method(value: str) -> list[str]:
    if not value:
        return ["payment_method: required"]
    if _PAYMENT_METHOD.fullmatch(value):
        return []
    if _CARD_LIKE.fullmatch(value.strip()):
        return ["payment_method: looks like a card number; send a PaymentMethod id (pm_...)"]
    return ["payment_method: a PaymentMethod id (pm_ followed by letters, digits and '_')"]


def _metadata(metadata: Mapping[str, str]) -> list[str]:
    problems = []
    if len(metadata) > MAX_METADATA_KEYS:
        problems.append(
            f"metadata: at most {MAX_METADATA_KEYS} keys (Stripe allows 50, checkout adds "
            f"{len(RESERVED_METADATA_KEYS)})"
        )
    for key, value in metadata.items():
        if key.startswith(RESERVED_METADATA_PREFIX):
            problems.append(f"metadata: keys starting with {RESERVED_METADATA_PREFIX} are reserved")
        elif not key or len(key) > METADATA_KEY_MAX or "[" in key or "]" in key:
            problems.append(
                f"metadata: keys of 1 to {METADATA_KEY_MAX} characters, without '[' or ']'"
            )
        elif len(value) > METADATA_VALUE_MAX:
            problems.append(f"metadata: values of at most {METADATA_VALUE_MAX} characters")
        elif "\x00" in key or "\x00" in value:
            problems.append("metadata: must not contain NUL characters")
        else:
            continue
        break  # one problem with the keys says enough
    return problems


def _has_control(value: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in value)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
