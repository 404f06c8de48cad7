"""Connect: connected accounts, their external (bank) accounts and capabilities.

Connected accounts are owned by the platform in the store; everything of a connected account
(its bank accounts, balance transactions, payouts) lives under the connected account's id, so
requests with `Stripe-Account: acct_...` see exactly that account's objects.

Bank accounts keep `last4` and a fingerprint only, never the full number. Test mode accepts
Stripe's documented test numbers (routing 110000000); the failing ones make payouts fail:
000111111116 no_account, 000111111113 account_closed, 000222222227 insufficient_funds,
000333333335 debit_not_authorized, 000444444440 invalid_currency.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from .. import money
from ..errors import PermissionError_, invalid, missing
from ..params import Params, merge_metadata
from ..router import control, route
from ..state import Ctx, Emulator
from ..store import Obj
from .accounts import account_object
from .common import list_response

if TYPE_CHECKING:
    from ..app import EmulatorApp

__all__ = [
    "bank_failure",
    "default_bank_account",
    "ensure_platform_bank",
    "new_bank_account",
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
}
BANK_TOKENS: dict[str, str] = {
    "btok_us": "000123456789",
    "btok_us_verified": "000123456789",
    "btok_us_verified_noAccount": "000111111116",
    "btok_us_verified_accountClosed": "000111111113",
    "btok_us_verified_insufficientFunds": "000222222227",
    "btok_us_verified_debitNotAuthorized": "000333333335",
    "btok_us_verified_invalidCurrency": "000444444440",
}
FAILURE_MESSAGES = {
    "no_account": "The bank account details on file are probably incorrect. No bank account "
    "could be located with those details.",
    "account_closed": "The bank account has been closed.",
    "insufficient_funds": "Your Stripe account has insufficient funds to cover the payout.",
    "debit_not_authorized": "Debit transactions are not approved on the bank account. (Stripe "
    "requires bank accounts to be set up for both credit and debit payouts.)",
    "invalid_currency": "The bank was unable to process this payout because of its currency. "
    "This is probably because the bank account cannot accept payments in that currency.",
}
COUNTRY_CURRENCY = {
    "US": "usd", "GB": "gbp", "CA": "cad", "AU": "aud", "NZ": "nzd", "JP": "jpy", "CH": "chf",
    "SE": "sek", "NO": "nok", "DK": "dkk", "PL": "pln", "CZ": "czk", "HU": "huf", "SG": "sgd",
    "HK": "hkd", "MX": "mxn", "BR": "brl", "IN": "inr", "RO": "ron", "BG": "bgn", "AE": "aed",
    "TH": "thb", "MY": "myr",
}  # fmt: skip
EURO_COUNTRIES = frozenset("AT BE CY DE EE ES FI FR GR HR IE IT LT LU LV MT NL PT SI SK".split())
CAPABILITIES = frozenset(
    "card_payments transfers acss_debit_payments affirm_payments afterpay_clearpay_payments "
    "bancontact_payments card_issuing eps_payments giropay_payments ideal_payments "
    "klarna_payments legacy_payments link_payments sepa_debit_payments sofort_payments "
    "tax_reporting_us_1099_k tax_reporting_us_1099_misc us_bank_account_ach_payments "
    "cashapp_payments p24_payments".split()
)
ACCOUNT_TYPES = frozenset({"custom", "express", "standard"})
BUSINESS_TYPES = frozenset({"individual", "company", "non_profit", "government_entity"})
INTERVALS = frozenset({"manual", "daily", "weekly", "monthly"})
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def currency_for_country(country: str, fallback: str) -> str:
    if country in EURO_COUNTRIES:
        return "eur"
    return COUNTRY_CURRENCY.get(country, fallback)


# -- bank accounts ----------------------------------------------------------------------------
def _fingerprint(country: str, routing: str | None, number: str) -> str:
    digest = hashlib.sha256(f"{country}:{routing}:{number}".encode()).digest()
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    return "".join(alphabet[b % 62] for b in digest[:16])


_FAILING_FINGERPRINTS = {
    _fingerprint("US", TEST_ROUTING, number): code
    for number, code in TEST_ACCOUNT_NUMBERS.items()
    if code is not None
}


def bank_failure(bank: Obj | None) -> str | None:
    """The payout failure code Stripe's test bank account produces (None: it pays out)."""
    if bank is None:
        return None
    return _FAILING_FINGERPRINTS.get(str(bank.get("fingerprint")))


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
        "available_payout_methods": ["standard"],
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


def _check_number(number: str, param: str) -> None:
    if not number.isdigit() or not 4 <= len(number) <= 17:
        raise invalid("Invalid account number: it must contain 4 to 17 digits.", param)
    if number not in TEST_ACCOUNT_NUMBERS:
        raise invalid(
            "You must use a test bank account number in test mode. Try 000123456789 or see "
            "more options at https://stripe.com/docs/connect/testing#account-numbers.",
            param,
        )


def _read_external_account(ctx: Ctx, p: Params, account: str, key: str) -> Obj | None:
    """`external_account` as a test token (btok_...) or a bank account hash."""
    raw = p.raw(key)
    if raw is None or raw == "":
        return None
    acct = ctx.store.get(account, kind="account") or {}
    acct_currency = acct.get("default_currency") or ctx.config.default_currency
    if isinstance(raw, str):
        number = BANK_TOKENS.get(raw)
        if number is None:
            raise invalid(f"No such token: '{raw}'", key, code="resource_missing")
        return new_bank_account(ctx, account, number, currency="usd")
    sub = p.sub(key)
    assert sub is not None
    obj_type = sub.string("object", required=True, choices={"bank_account"})
    assert obj_type is not None
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


def _banks(em: Emulator, account: str) -> list[Obj]:
    out: list[Obj] = []
    for ba_id in em.store.iter_ids(account, "bank_account", newest_first=False):
        obj = em.store.get(ba_id)
        if obj is not None:
            out.append(obj)
    return out


def default_bank_account(em: Emulator, account: str, currency: str) -> Obj | None:
    """The external account payouts in `currency` go to (None when there is none)."""
    for ba in _banks(em, account):
        if ba["currency"] == currency and ba["default_for_currency"]:
            return ba
    return None


def _add_bank(ctx: Ctx, account: str, ba: Obj, make_default: bool) -> Obj:
    current = default_bank_account(ctx.em, account, ba["currency"])
    if current is None or make_default:
        if current is not None:
            current["default_for_currency"] = False
            ctx.store.save(current)
        ba["default_for_currency"] = True
    ctx.store.insert(account, ba)
    _sync_account(ctx.em, account)
    return ba


def _sync_account(em: Emulator, account: str) -> Obj | None:
    """Refresh the account's embedded `external_accounts` list and payouts_enabled."""
    acct = em.store.get(account, kind="account")
    if acct is None:
        return None
    banks = _banks(em, account)[::-1]  # newest first, defaults ahead (stable sort)
    banks.sort(key=lambda b: not b["default_for_currency"])
    acct["external_accounts"]["data"] = banks[:10]
    acct["external_accounts"]["has_more"] = len(banks) > 10
    if account != em.config.platform_account:
        acct["payouts_enabled"] = bool(banks)
    em.store.save(acct)
    return acct


def ensure_platform_bank(em: Emulator, number: str | None = None) -> Obj:
    """The platform's payout bank account (000123456789 unless replaced)."""
    platform = em.config.platform_account
    currency = em.config.default_currency
    existing = default_bank_account(em, platform, currency)
    if existing is not None and number is None:
        return existing
    ctx = em.ctx(platform)
    ba = new_bank_account(
        ctx,
        platform,
        number or "000123456789",
        country=em.config.country,
        currency=currency,
        holder_name="payplane",
        holder_type="company",
    )
    if existing is not None:
        em.store.delete(existing["id"])
    return _add_bank(ctx, platform, ba, True)


@control("POST", "/_emulator/platform/bank_account")
def set_platform_bank(app: EmulatorApp, body: dict[str, Any]) -> Obj:
    """Replace the platform's payout bank account (emulator only).

    JSON body: {"account_number": "000111111116"}: one of Stripe's test numbers (routing
    110000000); the failing ones make the platform's payouts fail with their failure code.
    Answers the new bank account (last4 only).
    """
    number = body.get("account_number")
    if not isinstance(number, str) or number not in TEST_ACCOUNT_NUMBERS:
        raise ValueError(f"account_number must be one of {sorted(TEST_ACCOUNT_NUMBERS)}")
    return ensure_platform_bank(app.em, number)


# -- accounts ---------------------------------------------------------------------------------
def _require_platform(ctx: Ctx) -> None:
    if not ctx.is_platform:
        raise PermissionError_(
            "This application does not have the required permissions to access connected "
            "accounts of this account.",
            type="invalid_request_error",
        )


def _connected(ctx: Ctx, acct_id: str) -> Obj:
    _require_platform(ctx)
    return ctx.get(acct_id, "account", param="account")


def _capset_id(acct_id: str) -> str:
    return f"capset_{acct_id}"


def _capabilities(ctx: Ctx, acct_id: str) -> dict[str, dict[str, Any]]:
    found = ctx.store.get(_capset_id(acct_id))
    return dict(found["items"]) if found else {}


def _store_capabilities(ctx: Ctx, acct_id: str, items: dict[str, dict[str, Any]]) -> None:
    obj: Obj = {"id": _capset_id(acct_id), "object": "emulator.capabilities", "items": items}
    if ctx.store.get(obj["id"]) is None:
        ctx.store.insert(acct_id, obj)
    else:
        ctx.store.save(obj)


def _read_capabilities(p: Params) -> dict[str, bool] | None:
    sub = p.sub("capabilities")
    if sub is None:
        return None
    out: dict[str, bool] = {}
    for name in sub.keys():
        if name not in CAPABILITIES:
            continue  # done() refuses it, naming capabilities[name]
        cap = sub.sub(name)
        assert cap is not None
        requested = cap.boolean("requested")
        cap.done()
        if requested is not None:
            out[name] = requested
    sub.done()
    return out


def _apply_capabilities(ctx: Ctx, acct: Obj, requested: dict[str, bool]) -> None:
    items = _capabilities(ctx, acct["id"])
    for name, want in requested.items():
        item = items.get(name) or {"requested": False, "requested_at": None, "status": "inactive"}
        if want and not item["requested"]:
            item = {"requested": True, "requested_at": ctx.now, "status": "active"}
        elif not want:
            item = {"requested": False, "requested_at": None, "status": "inactive"}
        items[name] = item
    _store_capabilities(ctx, acct["id"], items)
    acct["capabilities"] = {
        name: item["status"] for name, item in sorted(items.items()) if item["requested"]
    }
    if acct["type"] != "standard":
        acct["charges_enabled"] = acct["capabilities"].get("card_payments") == "active"


def _read_schedule(p: Params, current: dict[str, Any]) -> dict[str, Any] | None:
    settings = p.sub("settings")
    if settings is None:
        return None
    payouts = settings.sub("payouts")
    schedule: dict[str, Any] | None = None
    if payouts is not None:
        sched = payouts.sub("schedule")
        if sched is not None:
            schedule = dict(current)
            interval = sched.string("interval", choices=INTERVALS)
            if interval is not None:
                schedule["interval"] = interval
            if sched.has("delay_days"):
                raw = sched.raw("delay_days")
                schedule["delay_days"] = (
                    2 if raw == "minimum" else sched.integer("delay_days", min=2, max=365)
                )
            anchor = sched.string("weekly_anchor", choices=set(WEEKDAYS))
            if anchor is not None:
                schedule["weekly_anchor"] = anchor
            monthly = sched.integer("monthly_anchor", min=1, max=31)
            if monthly is not None:
                schedule["monthly_anchor"] = monthly
            sched.done()
            if schedule["interval"] == "weekly":
                schedule.setdefault("weekly_anchor", "monday")
            if schedule["interval"] == "monthly":
                schedule.setdefault("monthly_anchor", 1)
        payouts.done()
    settings.done()
    return schedule


def _read_profile(p: Params, current: dict[str, Any]) -> dict[str, Any] | None:
    sub = p.sub("business_profile")
    if sub is None:
        return None
    profile = dict(current)
    for key in ("name", "url", "mcc", "product_description", "support_email", "support_phone"):
        if sub.has(key):
            profile[key] = sub.string(key, max_len=5000)
    sub.done()
    return profile


@route("POST", "/v1/accounts", perm="accounts")
def create(ctx: Ctx, p: Params) -> Obj:
    _require_platform(ctx)
    type_ = p.string("type", required=True, choices=ACCOUNT_TYPES)
    assert type_ is not None
    country = (p.string("country", max_len=2) or ctx.config.country).upper()
    if len(country) != 2 or not country.isalpha():
        raise invalid(f"Country '{country}' is unknown. Try using a 2-character alphanumeric "
                      "country code instead, such as 'US', 'EG', or 'GB'.", "country")  # fmt: skip
    currency = p.currency("default_currency") or currency_for_country(
        country, ctx.config.default_currency
    )
    email = p.string("email", max_len=512)
    business_type = p.string("business_type", choices=BUSINESS_TYPES)
    metadata = p.metadata() or {}
    capabilities = _read_capabilities(p) or {}
    acct_id = ctx.new_id("acct", 16)
    acct = account_object(
        acct_id,
        ctx.now,
        country,
        currency,
        type_,
        email=email,
        business_type=business_type,
        metadata=metadata,
        payouts_enabled=False,
        charges_enabled=type_ == "standard",
        details_submitted=type_ != "custom",
    )
    if type_ == "standard":
        acct["controller"] = {"is_controller": False, "type": "account"}
    profile = _read_profile(p, acct["business_profile"])
    if profile is not None:
        acct["business_profile"] = profile
    schedule = _read_schedule(p, acct["settings"]["payouts"]["schedule"])
    if schedule is not None:
        acct["settings"]["payouts"]["schedule"] = schedule
    tos = p.sub("tos_acceptance")
    if tos is not None:
        acct["tos_acceptance"] = {
            "date": tos.integer("date", min=0),
            "ip": tos.string("ip"),
            "user_agent": tos.string("user_agent"),
        }
        tos.done()
    bank = _read_external_account(ctx, p, acct_id, "external_account")
    p.done()
    ctx.insert(acct, ("email",))
    _apply_capabilities(ctx, acct, capabilities)
    ctx.save(acct)
    if bank is not None:
        _add_bank(ctx, acct_id, bank, True)
    created = ctx.store.get(acct_id, kind="account")
    assert created is not None
    return created


@route("GET", "/v1/accounts/{id}", perm="accounts")
def retrieve(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    if id == ctx.account:
        own = ctx.store.get(id, kind="account")
        assert own is not None
        return own
    return _connected(ctx, id)


@route("POST", "/v1/accounts/{id}", perm="accounts")
def update(ctx: Ctx, p: Params, id: str) -> Obj:
    acct = _connected(ctx, id)
    before: dict[str, Any] = {}
    for field in ("email", "business_type"):
        if p.has(field):
            choices = BUSINESS_TYPES if field == "business_type" else None
            value = p.string(field, max_len=512, choices=choices)
            if value != acct[field]:
                before[field] = acct[field]
                acct[field] = value
    if p.has("default_currency"):
        cur = p.currency("default_currency")
        if cur is not None and cur != acct["default_currency"]:
            before["default_currency"] = acct["default_currency"]
            acct["default_currency"] = cur
    if p.has("metadata"):
        meta = merge_metadata(acct["metadata"], p.metadata())
        if meta != acct["metadata"]:
            before["metadata"] = acct["metadata"]
            acct["metadata"] = meta
    profile = _read_profile(p, acct["business_profile"])
    if profile is not None and profile != acct["business_profile"]:
        before["business_profile"] = acct["business_profile"]
        acct["business_profile"] = profile
    schedule = _read_schedule(p, acct["settings"]["payouts"]["schedule"])
    if schedule is not None and schedule != acct["settings"]["payouts"]["schedule"]:
        before["settings"] = {"payouts": {"schedule": acct["settings"]["payouts"]["schedule"]}}
        acct["settings"]["payouts"]["schedule"] = schedule
    requested = _read_capabilities(p)
    bank = _read_external_account(ctx, p, id, "external_account")
    p.done()
    if requested:
        caps_before = dict(acct["capabilities"])
        _apply_capabilities(ctx, acct, requested)
        if acct["capabilities"] != caps_before:
            before["capabilities"] = caps_before
    ctx.save(acct)
    if bank is not None:
        before["external_accounts"] = acct["external_accounts"]
        _add_bank(ctx, id, bank, True)
    updated = ctx.store.get(id, kind="account")
    assert updated is not None
    if before:
        ctx.em.emit(id, "account.updated", updated, before, ctx.request_id, ctx.idempotency_key)
    return updated


@route("DELETE", "/v1/accounts/{id}", perm="accounts")
def delete(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    acct = _connected(ctx, id)
    if id == ctx.config.platform_account:
        raise invalid("You cannot delete your own account.", "account")
    ctx.store.delete(acct["id"])
    return {"id": id, "object": "account", "deleted": True}


@route("GET", "/v1/accounts", perm="accounts")
def list_(ctx: Ctx, p: Params) -> Obj:
    _require_platform(ctx)
    platform = ctx.config.platform_account
    return list_response(ctx, p, "account", "/v1/accounts", predicate=lambda o: o["id"] != platform)


# -- external accounts ------------------------------------------------------------------------
def _ext_scope(ctx: Ctx, acct_id: str) -> Obj:
    if acct_id == ctx.account:
        own = ctx.store.get(acct_id, kind="account")
        assert own is not None
        return own
    return _connected(ctx, acct_id)


def _get_bank(ctx: Ctx, acct_id: str, ba_id: str) -> Obj:
    ba = ctx.store.get(ba_id, acct_id, "bank_account")
    if ba is None:
        raise missing("external account", ba_id)
    return ba


def _emit_for(ctx: Ctx, acct_id: str, type_: str, obj: Obj, prev: dict[str, Any] | None) -> None:
    ctx.em.emit(acct_id, type_, obj, prev, ctx.request_id, ctx.idempotency_key)


@route("POST", "/v1/accounts/{id}/external_accounts", perm="accounts")
def create_external(ctx: Ctx, p: Params, id: str) -> Obj:
    _ext_scope(ctx, id)
    if not p.has("external_account"):
        p.string("external_account", required=True)
    bank = _read_external_account(ctx, p, id, "external_account")
    make_default = p.boolean("default_for_currency") or False
    metadata = p.metadata()
    p.done()
    assert bank is not None
    if metadata:
        bank["metadata"] = metadata
    _add_bank(ctx, id, bank, make_default)
    saved = ctx.store.get(bank["id"])
    assert saved is not None
    _emit_for(ctx, id, "account.external_account.created", saved, None)
    return saved


@route("GET", "/v1/accounts/{id}/external_accounts/{ext}", perm="accounts")
def retrieve_external(ctx: Ctx, p: Params, id: str, ext: str) -> Obj:
    p.done()
    _ext_scope(ctx, id)
    return _get_bank(ctx, id, ext)


@route("POST", "/v1/accounts/{id}/external_accounts/{ext}", perm="accounts")
def update_external(ctx: Ctx, p: Params, id: str, ext: str) -> Obj:
    _ext_scope(ctx, id)
    ba = _get_bank(ctx, id, ext)
    before: dict[str, Any] = {}
    for field in ("account_holder_name",):
        if p.has(field):
            value = p.string(field, max_len=256)
            if value != ba[field]:
                before[field], ba[field] = ba[field], value
    if p.has("account_holder_type"):
        value = p.string("account_holder_type", choices={"individual", "company"})
        if value != ba["account_holder_type"]:
            before["account_holder_type"], ba["account_holder_type"] = (
                ba["account_holder_type"],
                value,
            )
    if p.has("metadata"):
        meta = merge_metadata(ba["metadata"], p.metadata())
        if meta != ba["metadata"]:
            before["metadata"], ba["metadata"] = ba["metadata"], meta
    make_default = p.boolean("default_for_currency")
    p.done()
    if make_default and not ba["default_for_currency"]:
        current = default_bank_account(ctx.em, id, ba["currency"])
        if current is not None:
            current["default_for_currency"] = False
            ctx.store.save(current)
        before["default_for_currency"] = False
        ba["default_for_currency"] = True
    ctx.store.save(ba)
    _sync_account(ctx.em, id)
    if before:
        _emit_for(ctx, id, "account.external_account.updated", ba, before)
    return ba


@route("DELETE", "/v1/accounts/{id}/external_accounts/{ext}", perm="accounts")
def delete_external(ctx: Ctx, p: Params, id: str, ext: str) -> Obj:
    p.done()
    acct = _ext_scope(ctx, id)
    ba = _get_bank(ctx, id, ext)
    others = [b for b in _banks(ctx.em, id) if b["id"] != ext]
    if ba["default_for_currency"] and ba["currency"] == acct["default_currency"] and others:
        raise invalid(
            "You cannot delete the default external account for your default currency. Please "
            "make another external account the default using the `default_for_currency` "
            "param, and then delete this one.",
            "id",
        )
    ctx.store.delete(ext)
    _sync_account(ctx.em, id)
    _emit_for(ctx, id, "account.external_account.deleted", ba, None)
    return {"id": ext, "object": "bank_account", "deleted": True}


@route("GET", "/v1/accounts/{id}/external_accounts", perm="accounts")
def list_external(ctx: Ctx, p: Params, id: str) -> Obj:
    _ext_scope(ctx, id)
    p.string("object", choices={"bank_account", "card"})
    return list_response(
        ctx,
        p,
        "bank_account",
        f"/v1/accounts/{id}/external_accounts",
        account=id,
    )


# -- capabilities -----------------------------------------------------------------------------
_REQS: dict[str, Any] = {
    "alternatives": [], "current_deadline": None, "currently_due": [], "disabled_reason": None,
    "errors": [], "eventually_due": [], "past_due": [], "pending_verification": [],
}  # fmt: skip


def _capability_object(acct_id: str, name: str, item: dict[str, Any]) -> Obj:
    return {
        "id": name,
        "object": "capability",
        "account": acct_id,
        "future_requirements": dict(_REQS),
        "requested": item["requested"],
        "requested_at": item["requested_at"],
        "requirements": dict(_REQS),
        "status": item["status"],
    }


def _capability(ctx: Ctx, acct_id: str, name: str) -> dict[str, Any]:
    if name not in CAPABILITIES:
        raise invalid(f"No such capability: '{name}'", "capability", code="resource_missing")
    items = _capabilities(ctx, acct_id)
    return items.get(name) or {"requested": False, "requested_at": None, "status": "inactive"}


@route("GET", "/v1/accounts/{id}/capabilities", perm="accounts")
def list_capabilities(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    _ext_scope(ctx, id)
    items = _capabilities(ctx, id)
    data = [_capability_object(id, name, items[name]) for name in sorted(items)]
    return {
        "object": "list",
        "data": data,
        "has_more": False,
        "url": f"/v1/accounts/{id}/capabilities",
    }


@route("GET", "/v1/accounts/{id}/capabilities/{name}", perm="accounts")
def retrieve_capability(ctx: Ctx, p: Params, id: str, name: str) -> Obj:
    p.done()
    _ext_scope(ctx, id)
    return _capability_object(id, name, _capability(ctx, id, name))


@route("POST", "/v1/accounts/{id}/capabilities/{name}", perm="accounts")
def update_capability(ctx: Ctx, p: Params, id: str, name: str) -> Obj:
    acct = _connected(ctx, id)
    _capability(ctx, id, name)
    requested = p.boolean("requested")
    p.done()
    if requested is not None:
        before = dict(acct["capabilities"])
        _apply_capabilities(ctx, acct, {name: requested})
        ctx.save(acct)
        if acct["capabilities"] != before:
            _emit_for(ctx, id, "account.updated", acct, {"capabilities": before})
    return _capability_object(id, name, _capability(ctx, id, name))


def settlement(em: Emulator, account: str, amount: int, currency: str) -> tuple[int, str]:
    """`amount` of `currency` in the account's settlement currency (converted if needed)."""
    target = money.settlement_currency(em, account, currency)
    if target == currency:
        return amount, currency
    rate = money.exchange_rate(em, currency, target)
    return money.convert(amount, currency, target, rate), target
