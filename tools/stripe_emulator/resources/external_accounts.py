"""External accounts (where payouts go): bank accounts and debit cards, with Stripe's test values.

Bank accounts and cards keep `last4` and a fingerprint only, never the full number. Test mode
accepts Stripe's documented numbers (docs.stripe.com/connect/testing, "Payouts"):

- bank accounts (routing 110000000): 000123456789 pays out; 000111111116 fails with
  no_account, 000111111113 account_closed, 000222222227 insufficient_funds, 000333333335
  debit_not_authorized, 000444444440 invalid_currency; 000888888883 pays out but is not
  eligible for Instant Payouts; 000999999991 pays out, and its ownership verification
  completes after a delay (status `verified`);
- debit cards: 4000056655665556 (tok_visa_debit_us_transferSuccess), 5200828282828210
  (tok_mastercard_debit_us_transferSuccess) and 6011981111111113
  (tok_discover_debit_us_transferSuccess) pay out; 4000056655665572
  (tok_visa_debit_us_transferFail) fails with could_not_process; 4000056755665555
  (tok_visa_debit_us_instantPayoutUnsupported) is not eligible for Instant Payouts.

Stripe documents no number for the other failure codes (account_frozen, bank_account_restricted,
invalid_account_number, declined, ...): `POST /_emulator/external_accounts/{id}/payout_failure`
makes every later payout to one external account fail with any of them.

Status: a bank account is `new`, `validated` once a payout to it was paid, `verified` after
ownership verification, `errored` once a payout to it failed (scheduled payouts stop until it
is updated or replaced); a card is `new` or `errored`.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from ..errors import invalid
from ..params import Params
from ..router import control
from ..state import Emulator
from ..store import Obj

if TYPE_CHECKING:
    from ..app import EmulatorApp
    from ..state import Ctx

__all__ = [
    "FAILURE_MESSAGES",
    "all_external_accounts",
    "default_external_account",
    "instant_eligible",
    "new_bank_account",
    "payout_failure",
    "read_external_account",
]

TEST_ROUTING = "110000000"
# account number -> payout failure code (None: payouts succeed)
TEST_ACCOUNT_NUMBERS: dict[str, str | None] = {
    "000123456789": None,
    "000111111116": "no_account",
    "000111111113": "account_closed",
    "000222222227": "insufficient_funds",
    "000333333335": "debit_not_authorized",
    "000444444440": "invalid_currency",
    "000888888883": None,
    "000999999991": None,
}
NOT_INSTANT_NUMBERS = frozenset({"000888888883"})
OWNERSHIP_VERIFIED_NUMBERS = frozenset({"000999999991"})
BANK_TOKENS: dict[str, str] = {
    "btok_us": "000123456789",
    "btok_us_verified": "000123456789",
    "btok_us_verified_noAccount": "000111111116",
    "btok_us_verified_accountClosed": "000111111113",
    "btok_us_verified_insufficientFunds": "000222222227",
    "btok_us_verified_debitNotAuthorized": "000333333335",
    "btok_us_verified_invalidCurrency": "000444444440",
}
# card number -> (brand, payout failure code, eligible for Instant Payouts)
TEST_CARDS: dict[str, tuple[str, str | None, bool]] = {
    "4000056655665556": ("Visa", None, True),
    "4000056655665572": ("Visa", "could_not_process", True),
    "4000056755665555": ("Visa", None, False),
    "5200828282828210": ("MasterCard", None, True),
    "6011981111111113": ("Discover", None, True),
}
CARD_TOKENS: dict[str, str] = {
    "tok_visa_debit_us_transferSuccess": "4000056655665556",
    "tok_visa_debit_us_transferFail": "4000056655665572",
    "tok_visa_debit_us_instantPayoutUnsupported": "4000056755665555",
    "tok_mastercard_debit_us_transferSuccess": "5200828282828210",
    "tok_discover_debit_us_transferSuccess": "6011981111111113",
}
# Every payout failure_code Stripe documents, with what the bank's answer means.
FAILURE_MESSAGES: dict[str, str] = {
    "account_closed": "The bank account has been closed.",
    "account_frozen": "The bank account has been frozen.",
    "bank_account_restricted": "The bank account has restrictions on either the type or the "
    "number of payouts allowed. This normally indicates that the bank account is a savings or "
    "other non-checking account.",
    "bank_ownership_changed": "The destination bank can no longer process payouts because its "
    "branch has been acquired by another financial institution.",
    "could_not_process": "The bank could not process this payout.",
    "debit_not_authorized": "Debit transactions are not approved on the bank account. (Stripe "
    "requires bank accounts to be set up for both credit and debit payouts.)",
    "declined": "The bank has declined this transfer. Please contact the bank before retrying.",
    "incorrect_account_holder_address": "The bank notified us that the bank account holder "
    "address on file is incorrect.",
    "incorrect_account_holder_name": "The bank notified us that the bank account holder name "
    "on file is incorrect.",
    "incorrect_account_holder_tax_id": "The bank notified us that the bank account holder tax "
    "ID on file is incorrect.",
    "insufficient_funds": "Your Stripe account has insufficient funds to cover the payout.",
    "invalid_account_number": "The routing number seems correct, but the account number is "
    "invalid.",
    "invalid_currency": "The bank was unable to process this payout because of its currency. "
    "This is probably because the bank account cannot accept payments in that currency.",
    "no_account": "The bank account details on file are probably incorrect. No bank account "
    "could be located with those details.",
    "unsupported_card": "The bank no longer supports payouts to this card.",
}
# Failures of Stripe's own side (the balance): the external account itself is fine.
BALANCE_FAILURES = frozenset({"insufficient_funds"})

COUNTRY_CURRENCY = {
    "US": "usd", "GB": "gbp", "CA": "cad", "AU": "aud", "NZ": "nzd", "JP": "jpy", "CH": "chf",
    "SE": "sek", "NO": "nok", "DK": "dkk", "PL": "pln", "CZ": "czk", "HU": "huf", "SG": "sgd",
    "HK": "hkd", "MX": "mxn", "BR": "brl", "IN": "inr", "RO": "ron", "BG": "bgn", "AE": "aed",
    "TH": "thb", "MY": "myr",
}  # fmt: skip
EURO_COUNTRIES = frozenset("AT BE CY DE EE ES FI FR GR HR IE IT LT LU LV MT NL PT SI SK".split())
# Where Stripe offers Instant Payouts (docs.stripe.com/connect/instant-payouts).
INSTANT_COUNTRIES = frozenset({"AE", "AU", "CA", "DK", "GB", "HK", "MY", "NO", "NZ", "SE", "SG",
                               "US"}) | EURO_COUNTRIES  # fmt: skip
KINDS = ("bank_account", "card")


def currency_for_country(country: str, fallback: str) -> str:
    if country in EURO_COUNTRIES:
        return "eur"
    return COUNTRY_CURRENCY.get(country, fallback)


def _fingerprint(*parts: str | None) -> str:
    digest = hashlib.sha256(":".join(p or "" for p in parts).encode()).digest()
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    return "".join(alphabet[b % 62] for b in digest[:16])


_FAILING = {
    _fingerprint("US", TEST_ROUTING, number): code
    for number, code in TEST_ACCOUNT_NUMBERS.items()
    if code is not None
} | {_fingerprint("card", number): code for number, (_, code, _i) in TEST_CARDS.items() if code}


def _override_id(ext_id: str) -> str:
    return f"pofail_{ext_id}"


def payout_failure(em: Emulator, ext: Obj | None) -> str | None:
    """The failure code a payout to `ext` ends with (None: it is paid)."""
    if ext is None:
        return None
    override = em.store.get(_override_id(str(ext["id"])))
    if override is not None:
        return str(override["failure_code"])
    return _FAILING.get(str(ext.get("fingerprint")))


def instant_eligible(ext: Obj) -> bool:
    return "instant" in (ext.get("available_payout_methods") or [])


def _methods(country: str, instant: bool) -> list[str]:
    return ["standard", "instant"] if instant and country in INSTANT_COUNTRIES else ["standard"]


def new_bank_account(
    ctx: Ctx,
    account: str,
    number: str,
    *,
    country: str = "US",
    currency: str = "usd",
    routing: str | None = TEST_ROUTING,
    holder_name: str | None = None,
    holder_type: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Obj:
    return {
        "id": ctx.new_id("ba"),
        "object": "bank_account",
        "account": account,
        "account_holder_name": holder_name,
        "account_holder_type": holder_type,
        "account_type": None,
        "available_payout_methods": _methods(country, number not in NOT_INSTANT_NUMBERS),
        "bank_name": "STRIPE TEST BANK",
        "country": country,
        "currency": currency,
        "customer": None,
        "default_for_currency": False,
        "fingerprint": _fingerprint(country, routing, number),
        "last4": number[-4:],
        "metadata": metadata or {},
        "routing_number": routing,
        "status": "new",
    }


def new_card(
    ctx: Ctx, account: str, number: str, exp_month: int, exp_year: int, currency: str
) -> Obj:
    brand, _code, instant = TEST_CARDS[number]
    return {
        "id": ctx.new_id("card"),
        "object": "card",
        "account": account,
        "address_city": None, "address_country": None, "address_line1": None,
        "address_line1_check": None, "address_line2": None, "address_state": None,
        "address_zip": None, "address_zip_check": None,
        "available_payout_methods": _methods("US", instant),
        "brand": brand,
        "country": "US",
        "currency": currency,
        "customer": None,
        "cvc_check": None,
        "default_for_currency": False,
        "dynamic_last4": None,
        "exp_month": exp_month,
        "exp_year": exp_year,
        "fingerprint": _fingerprint("card", number),
        "funding": "debit",
        "last4": number[-4:],
        "metadata": {},
        "name": None,
        "regulated_status": "unregulated",
        "status": "new",
        "tokenization_method": None,
    }  # fmt: skip


def _check_number(number: str, param: str) -> None:
    if not number.isdigit() or not 4 <= len(number) <= 17:
        raise invalid("Invalid account number: it must contain 4 to 17 digits.", param)
    if number not in TEST_ACCOUNT_NUMBERS:
        raise invalid(
            "You must use a test bank account number in test mode. Try 000123456789 or see "
            "more options at https://stripe.com/docs/connect/testing#account-numbers.",
            param,
        )


def _read_card(ctx: Ctx, sub: Params, account: str, key: str, currency: str) -> Obj:
    number = sub.string("number", required=True)
    assert number is not None
    exp_month = sub.integer("exp_month", required=True, min=1, max=12)
    exp_year = sub.integer("exp_year", required=True, min=2000, max=2100)
    card_currency = sub.currency("currency") or currency
    for name in ("cvc", "name", "address_zip", "address_line1", "address_city", "address_state",
                 "address_country", "address_line2"):  # fmt: skip
        sub.string(name)
    sub.done()
    assert exp_month is not None and exp_year is not None
    if number not in TEST_CARDS:
        raise invalid(
            "You must use a test debit card number in test mode, such as 4000056655665556. See "
            "https://stripe.com/docs/connect/testing#payouts.",
            f"{key}[number]",
            code="invalid_card_type",
        )
    return new_card(ctx, account, number, exp_month, exp_year, card_currency)


def read_external_account(ctx: Ctx, p: Params, account: str, key: str) -> Obj | None:
    """`external_account` as a test token (btok_..., tok_..._debit_...) or a bank or card hash."""
    raw = p.raw(key)
    if raw is None or raw == "":
        return None
    acct = ctx.store.get(account, kind="account") or {}
    acct_currency = acct.get("default_currency") or ctx.config.default_currency
    if isinstance(raw, str):
        if raw in CARD_TOKENS:
            return new_card(ctx, account, CARD_TOKENS[raw], 12, 2034, "usd")
        number = BANK_TOKENS.get(raw)
        if number is None:
            raise invalid(f"No such token: '{raw}'", key, code="resource_missing")
        return new_bank_account(ctx, account, number, currency="usd")
    sub = p.sub(key)
    assert sub is not None
    obj_type = sub.string("object", required=True, choices={"bank_account", "card"})
    if obj_type == "card":
        return _read_card(ctx, sub, account, key, acct_currency)
    country = (sub.string("country", required=True, max_len=2) or "US").upper()
    currency = sub.currency("currency") or currency_for_country(country, acct_currency)
    number = sub.string("account_number", required=True)
    assert number is not None
    routing = sub.string("routing_number")
    holder_name = sub.string("account_holder_name", max_len=256)
    holder_type = sub.string("account_holder_type", choices={"individual", "company"})
    sub.done()
    _check_number(number, f"{key}[account_number]")
    if country == "US":
        if routing is None:
            raise invalid(
                f"Missing required param: {key}[routing_number].", f"{key}[routing_number]"
            )
        if not routing.isdigit() or len(routing) != 9:
            raise invalid("Routing number must have 9 digits.", f"{key}[routing_number]")
    return new_bank_account(
        ctx,
        account,
        number,
        country=country,
        currency=currency,
        routing=routing,
        holder_name=holder_name,
        holder_type=holder_type,
    )


def is_ownership_verified_number(ext: Obj) -> bool:
    return ext.get("fingerprint") in _OWNERSHIP_FINGERPRINTS


_OWNERSHIP_FINGERPRINTS = frozenset(
    _fingerprint("US", TEST_ROUTING, n) for n in OWNERSHIP_VERIFIED_NUMBERS
)


def all_external_accounts(em: Emulator, account: str) -> list[Obj]:
    """Bank accounts and cards of `account`, oldest first."""
    ids = [i for kind in KINDS for i in em.store.iter_ids(account, kind, newest_first=False)]
    ids.sort(key=em.store.seq)
    out: list[Obj] = []
    for ext_id in ids:
        obj = em.store.get(ext_id)
        if obj is not None:
            out.append(obj)
    return out


def default_external_account(em: Emulator, account: str, currency: str) -> Obj | None:
    """The external account payouts in `currency` go to (None when there is none)."""
    for ext in all_external_accounts(em, account):
        if ext["currency"] == currency and ext["default_for_currency"]:
            return ext
    return None


def get_external(em: Emulator, account: str, ext_id: str) -> Obj | None:
    kind = em.store.kind_of(ext_id)
    if kind not in KINDS:
        return None
    return em.store.get(ext_id, account, kind)


def sync_account(em: Emulator, account: str) -> Obj | None:
    """Refresh the account's embedded `external_accounts` list (newest first, defaults ahead)."""
    acct = em.store.get(account, kind="account")
    if acct is None:
        return None
    exts = all_external_accounts(em, account)[::-1]
    exts.sort(key=lambda b: not b["default_for_currency"])  # stable: newest first within
    acct["external_accounts"]["data"] = exts[:10]
    acct["external_accounts"]["has_more"] = len(exts) > 10
    em.store.save(acct)
    return acct


def add_external(em: Emulator, account: str, ext: Obj, make_default: bool) -> Obj:
    current = default_external_account(em, account, ext["currency"])
    if current is None or make_default:
        if current is not None:
            current["default_for_currency"] = False
            em.store.save(current)
        ext["default_for_currency"] = True
    em.store.insert(account, ext)
    sync_account(em, account)
    return ext


def set_payout_failure(em: Emulator, account: str, ext_id: str, code: str | None) -> None:
    oid = _override_id(ext_id)
    if em.store.get(oid) is not None:
        em.store.delete(oid)
    if code is not None:
        em.store.insert(
            account, {"id": oid, "object": "emulator.payout_failure", "failure_code": code}
        )


@control("POST", "/_emulator/external_accounts/{ext_id}/payout_failure")
def payout_failure_control(app: EmulatorApp, body: dict[str, Any], ext_id: str) -> Obj:
    """Make every later payout to one external account fail (emulator only).

    JSON body: {"failure_code": "account_frozen"} (any payout failure code Stripe documents;
    null restores the account's own behaviour). Answers {"external_account", "failure_code"}.
    """
    em = app.em
    account = em.store.owner(ext_id)
    if account is None or em.store.kind_of(ext_id) not in KINDS:
        raise ValueError(f"no such external account {ext_id!r}")
    code = body.get("failure_code")
    if code is not None and code not in FAILURE_MESSAGES:
        raise ValueError(f"failure_code must be one of {sorted(FAILURE_MESSAGES)} or null")
    set_payout_failure(em, account, ext_id, code)
    return {"external_account": ext_id, "failure_code": code}
