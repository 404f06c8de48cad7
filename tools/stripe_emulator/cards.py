"""Stripe's test cards: what each number does when it is charged.

A PaymentMethod never keeps the card number: it keeps brand, country, funding, last4 and a
fingerprint that is deterministic per number. Behaviour is looked up again by fingerprint
(`spec_for_fingerprint`), so nothing but last4 of a number is ever stored or echoed.

Besides Stripe's documented cards, the emulator offers one card per decline code that has
no documented card (emulator-only numbers 4000 0099 0000 NNNC and ids
`pm_card_declined_<decline_code>`, e.g. `pm_card_declined_do_not_honor`).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from dataclasses import dataclass, replace

__all__ = [
    "DECLINES",
    "PM_CARDS",
    "TOKENS",
    "CardSpec",
    "Decline",
    "brand_of",
    "fingerprint",
    "lookup",
    "luhn_ok",
    "spec_for_fingerprint",
]

_FP_KEY = b"stripe-emulator-card-fingerprint"
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Decline:
    """How an issuer (or Radar) answers: Stripe's error code, decline code and wording."""

    code: str  # error.code: card_declined, expired_card, incorrect_cvc, processing_error ...
    decline_code: str
    message: str
    advice_code: str | None
    network_decline_code: str | None


_DECLINED = "Your card was declined."
_D = Decline
DECLINES: dict[str, Decline] = {
    # retry the same card later
    "processing_error": _D(
        "processing_error",
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
        "try_again_later",
        "96",
    ),
    "try_again_later": _D("card_declined", "try_again_later", _DECLINED, "try_again_later", "19"),
    "issuer_not_available": _D(
        "card_declined", "issuer_not_available", _DECLINED, "try_again_later", "91"
    ),
    "reenter_transaction": _D(
        "card_declined", "reenter_transaction", _DECLINED, "try_again_later", "19"
    ),
    # maybe later
    "insufficient_funds": _D(
        "card_declined",
        "insufficient_funds",
        "Your card has insufficient funds.",
        "try_again_later",
        "51",
    ),
    "card_velocity_exceeded": _D(
        "card_declined",
        "card_velocity_exceeded",
        "Your card was declined for making repeated attempts too frequently or exceeding its "
        "amount limit.",
        "try_again_later",
        "65",
    ),
    "withdrawal_count_limit_exceeded": _D(
        "card_declined", "withdrawal_count_limit_exceeded", _DECLINED, "try_again_later", "65"
    ),
    # customer must act
    "incorrect_cvc": _D(
        "incorrect_cvc",
        "incorrect_cvc",
        "Your card's security code is incorrect.",
        "confirm_card_data",
        "N7",
    ),
    "incorrect_number": _D(
        "incorrect_number",
        "incorrect_number",
        "Your card number is incorrect.",
        "confirm_card_data",
        "14",
    ),
    "expired_card": _D(
        "expired_card", "expired_card", "Your card has expired.", "confirm_card_data", "54"
    ),
    "authentication_required": _D(
        "authentication_required",
        "authentication_required",
        "Your card was declined. This transaction requires authentication.",
        None,
        "1A",
    ),
    "call_issuer": _D("card_declined", "call_issuer", _DECLINED, None, "01"),
    "do_not_honor": _D("card_declined", "do_not_honor", _DECLINED, None, "05"),
    "generic_decline": _D("card_declined", "generic_decline", _DECLINED, None, "05"),
    "card_not_supported": _D(
        "card_declined",
        "card_not_supported",
        "Your card does not support this type of purchase.",
        None,
        "57",
    ),
    "currency_not_supported": _D(
        "card_declined",
        "currency_not_supported",
        "Your card does not support this currency.",
        None,
        "57",
    ),
    # never retry
    "lost_card": _D("card_declined", "lost_card", _DECLINED, "do_not_try_again", "41"),
    "stolen_card": _D("card_declined", "stolen_card", _DECLINED, "do_not_try_again", "43"),
    "pickup_card": _D("card_declined", "pickup_card", _DECLINED, "do_not_try_again", "04"),
    "fraudulent": _D("card_declined", "fraudulent", _DECLINED, "do_not_try_again", "59"),
    "merchant_blacklist": _D(
        "card_declined", "merchant_blacklist", _DECLINED, "do_not_try_again", None
    ),
    "security_violation": _D(
        "card_declined", "security_violation", _DECLINED, "do_not_try_again", "63"
    ),
    "revocation_of_authorization": _D(
        "card_declined", "revocation_of_authorization", _DECLINED, "do_not_try_again", "R1"
    ),
    "do_not_try_again": _D(
        "card_declined", "do_not_try_again", _DECLINED, "do_not_try_again", "R0"
    ),
}


@dataclass(frozen=True)
class CardSpec:
    number: str
    brand: str = "visa"
    country: str = "US"
    funding: str = "credit"
    decline: str | None = None  # decline code when the issuer declines
    risk: str = "normal"  # normal | elevated | highest
    blocked: bool = False  # Radar blocks the payment
    three_ds: bool = False  # authentication required
    # ... except for off-session payments once set up for them (a SetupIntent succeeded)
    three_ds_setup_once: bool = False
    dispute: str | None = None  # dispute reason opened after success
    early_fraud_warning: bool = False
    immediate: bool = False  # funds skip the pending balance
    cvc_check: str = "pass"
    address_line1_check: str | None = "pass"
    address_postal_code_check: str | None = "pass"

    @property
    def last4(self) -> str:
        return self.number[-4:]


def luhn_ok(number: str) -> bool:
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _luhn_complete(partial: str) -> str:
    for check in "0123456789":
        if luhn_ok(partial + check):
            return partial + check
    raise AssertionError(partial)  # pragma: no cover - one digit always completes


def brand_of(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    two, four = int(number[:2] or 0), int(number[:4] or 0)
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return "mastercard"
    if two in (34, 37):
        return "amex"
    if number.startswith(("6011", "65", "644", "645", "646", "647", "648", "649")):
        return "discover"
    if two == 35:
        return "jcb"
    if two in (30, 36, 38, 39):
        return "diners"
    if two == 62:
        return "unionpay"
    return "unknown"


@functools.lru_cache(maxsize=4096)  # pure, and asked for on every charge
def fingerprint(number: str) -> str:
    """16 base-62 characters, the same for the same number, revealing nothing of it."""
    digest = hmac.new(_FP_KEY, number.encode(), hashlib.sha256).digest()
    n = int.from_bytes(digest[:12], "big")
    out = []
    for _ in range(16):
        n, r = divmod(n, 62)
        out.append(_B62[r])
    return "".join(out)


def _card(number: str, **kw: object) -> CardSpec:
    kw.setdefault("brand", brand_of(number))
    return CardSpec(number, **kw)  # type: ignore[arg-type]


# number -> behaviour; `_PM` names each pm_card_* / tok_* case.
_TABLE: list[tuple[CardSpec, tuple[str, ...]]] = [
    # brands
    (_card("4242424242424242"), ("visa",)),
    (_card("4000056655665556", funding="debit"), ("visa_debit",)),
    (_card("5555555555554444"), ("mastercard",)),
    (_card("2223003122003222"), ()),
    (_card("5200828282828210", funding="debit"), ("mastercard_debit",)),
    (_card("5105105105105100", funding="prepaid"), ("mastercard_prepaid",)),
    (_card("378282246310005"), ("amex",)),
    (_card("371449635398431"), ()),
    (_card("6011111111111117"), ("discover",)),
    (_card("6011000990139424"), ()),
    (_card("6011981111111113", funding="debit"), ("discover_debit",)),
    (_card("3056930009020004"), ("diners",)),
    (_card("36227206271667"), ()),
    (_card("3566002020360505"), ()),
    (_card("6200000000000005"), ("unionpay",)),
    # international
    (_card("4000000760000002", country="BR"), ("br",)),
    (_card("4000001240000000", country="CA"), ("ca",)),
    (_card("4000004840008001", country="MX"), ("mx",)),
    (_card("4000000400000008", country="AT"), ("at",)),
    (_card("4000000560000004", country="BE"), ("be",)),
    (_card("4000002080000001", country="DK"), ("dk",)),
    (_card("4000002460000001", country="FI"), ("fi",)),
    (_card("4000002500000003", country="FR"), ("fr",)),
    (_card("4000002760000016", country="DE"), ("de",)),
    (_card("4000003720000005", country="IE"), ("ie",)),
    (_card("4000003800000008", country="IT"), ("it",)),
    (_card("4000005280000002", country="NL"), ("nl",)),
    (_card("4000005780000007", country="NO"), ("no",)),
    (_card("4000007240000007", country="ES"), ("es",)),
    (_card("4000007520000008", country="SE"), ("se",)),
    (_card("4000007560000009", country="CH"), ("ch",)),
    (_card("4000008260000000", country="GB"), ("gb",)),
    (_card("4000058260000005", country="GB", funding="debit"), ("gb_debit",)),
    (_card("5555558265554449", country="GB"), ("gb_mastercard",)),
    (_card("4000000360000006", country="AU"), ("au",)),
    (_card("4000003440000004", country="HK"), ("hk",)),
    (_card("4000003920000003", country="JP"), ("jp",)),
    (_card("3530111333300000", country="JP"), ("jcb",)),
    (_card("4000005540000008", country="NZ"), ("nz",)),
    (_card("4000007020000003", country="SG"), ("sg",)),
    # declines
    (_card("4000000000000002", decline="generic_decline"), ("chargeDeclined",)),
    (
        _card("4000000000009995", decline="insufficient_funds"),
        ("chargeDeclinedInsufficientFunds", "visa_chargeDeclinedInsufficientFunds"),
    ),
    (
        _card("4000000000009987", decline="lost_card"),
        ("chargeDeclinedLostCard", "visa_chargeDeclinedLostCard"),
    ),
    (
        _card("4000000000009979", decline="stolen_card"),
        ("chargeDeclinedStolenCard", "visa_chargeDeclinedStolenCard"),
    ),
    (_card("4000000000000069", decline="expired_card"), ("chargeDeclinedExpiredCard",)),
    (_card("4000000000000127", decline="incorrect_cvc"), ("chargeDeclinedIncorrectCvc",)),
    (
        _card("4000000000000119", decline="processing_error"),
        ("chargeDeclinedProcessingError",),
    ),
    (
        _card("4000000000006975", decline="card_velocity_exceeded"),
        ("chargeDeclinedVelocityLimitExceeded", "visa_chargeDeclinedVelocityLimitExceeded"),
    ),
    (_card("4000000000000341", decline="generic_decline"), ("chargeCustomerFail",)),
    # checks
    (_card("4000000000000101", cvc_check="fail"), ("cvcCheckFail",)),
    (
        _card("4000000000000010", address_line1_check="fail", address_postal_code_check="fail"),
        ("avsFail",),
    ),
    (_card("4000000000000028", address_line1_check="fail"), ("avsLine1Fail",)),
    (_card("4000000000000036", address_postal_code_check="fail"), ("avsZipFail",)),
    # Radar
    (_card("4100000000000019", blocked=True, risk="highest"), ("radarBlock",)),
    (_card("4000000000004954", blocked=True, risk="highest"), ("riskLevelHighest",)),
    (_card("4000000000009235", risk="elevated"), ("riskLevelElevated",)),
    # 3D Secure
    (
        _card("4000002500003155", three_ds=True, three_ds_setup_once=True),
        ("authenticationRequiredOnSetup",),
    ),
    (_card("4000002760003184", three_ds=True, country="DE"), ("authenticationRequired",)),
    (_card("4000000000003220", three_ds=True), ("threeDSecure2Required",)),
    (_card("4000000000003063", three_ds=True), ("threeDSecureRequired",)),
    (
        _card("4000008400001629", three_ds=True, decline="insufficient_funds"),
        ("authenticationRequiredChargeDeclinedInsufficientFunds",),
    ),
    (_card("4000000000003055"), ("threeDSecureOptional",)),
    # after success
    (_card("4000000000000259", dispute="fraudulent"), ("createDispute",)),
    (
        _card("4000000000002685", dispute="product_not_received"),
        ("createDisputeProductNotReceived",),
    ),
    (
        _card("4000000000005423", early_fraud_warning=True),
        ("createEarlyFraudWarning", "radarEarlyFraudWarning"),
    ),
    (_card("4000000000000077", immediate=True), ("bypassPending",)),
    (_card("4000003720000278", immediate=True, country="IE"), ("bypassPendingInternational",)),
]

# Decline codes without a documented card: emulator-only numbers 40000099 0000 NNN C.
_documented = {spec.decline for spec, _ in _TABLE if spec.decline}
for _i, _code in enumerate(sorted(set(DECLINES) - _documented - {"authentication_required"})):
    _num = _luhn_complete(f"400000990000{_i:03d}")
    _TABLE.append((_card(_num, decline=_code), (f"declined_{_code}",)))

CARDS: dict[str, CardSpec] = {spec.number: spec for spec, _ in _TABLE}
PM_CARDS: dict[str, str] = {}
TOKENS: dict[str, str] = {}
for _spec, _names in _TABLE:
    for _name in _names:
        PM_CARDS[f"pm_card_{_name}"] = _spec.number
        TOKENS[f"tok_{_name}"] = _spec.number
_BY_FP: dict[str, CardSpec] = {fingerprint(n): s for n, s in CARDS.items()}


def lookup(number: str) -> CardSpec:
    """The behaviour of a (Luhn-valid) number: a documented card or a plain success."""
    known = CARDS.get(number)
    if known is not None:
        return known
    return CardSpec(number, brand=brand_of(number))


def spec_for_fingerprint(fp: str | None, brand: str = "visa", country: str = "US") -> CardSpec:
    """What a stored PaymentMethod does, found again without ever keeping its number."""
    known = _BY_FP.get(fp or "")
    if known is not None:
        return known
    return replace(CardSpec("0000000000000000"), brand=brand, country=country)
