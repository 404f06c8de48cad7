"""Connect: connected accounts, their external accounts and capabilities.

Connected accounts are owned by the platform in the store; everything of a connected account
(its external accounts, persons, balance transactions, payouts) lives under the connected
account's id, so requests with `Stripe-Account: acct_...` see exactly that account's objects.

What an account must provide, and how its requirements, capabilities and `charges_enabled` /
`payouts_enabled` follow the data it gets, is `onboarding`; external accounts and Stripe's
test bank and card numbers are `external_accounts`; persons are `persons`; hosted onboarding
is `account_links`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import money
from ..errors import PermissionError_, invalid, missing
from ..params import Params, merge_metadata
from ..router import control, route
from ..state import Ctx, Emulator, on_restore, timer
from ..store import Obj
from . import capabilities, onboarding
from . import external_accounts as ext_mod
from .accounts import account_object
from .common import address, list_response
from .external_accounts import (
    FAILURE_MESSAGES,
    TEST_ACCOUNT_NUMBERS,
    currency_for_country,
    default_external_account,
    new_bank_account,
    payout_failure,
)
from .persons import apply_person_params, company_of, new_person

if TYPE_CHECKING:
    from ..app import EmulatorApp

__all__ = [
    "FAILURE_MESSAGES",
    "bank_failure",
    "default_bank_account",
    "ensure_platform_bank",
    "mark_errored",
    "mark_validated",
    "new_bank_account",
    "settlement",
]

ACCOUNT_TYPES = frozenset({"custom", "express", "standard"})
BUSINESS_TYPES = frozenset({"individual", "company", "non_profit", "government_entity"})
INTERVALS = frozenset({"manual", "daily", "weekly", "monthly"})
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
REJECT_REASONS = frozenset({"fraud", "terms_of_service", "other"})
MIN_DELAY_DAYS = 2


def default_bank_account(em: Emulator, account: str, currency: str) -> Obj | None:
    """The external account (bank account or card) payouts in `currency` go to."""
    return default_external_account(em, account, currency)


def bank_failure(em: Emulator, ext: Obj | None) -> str | None:
    """The payout failure code `ext` produces (None: it pays out)."""
    return payout_failure(em, ext)


def ensure_platform_bank(em: Emulator, number: str | None = None) -> Obj:
    """The platform's payout bank account (000123456789 unless replaced)."""
    platform = em.config.platform_account
    currency = em.config.default_currency
    existing = default_external_account(em, platform, currency)
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
    ba["available_payout_methods"] = ["standard"]
    if existing is not None:
        em.store.delete(existing["id"])
    return ext_mod.add_external(em, platform, ba, True)


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


def mark_errored(em: Emulator, account: str, ext_id: str) -> None:
    """A payout to `ext_id` failed: Stripe stops scheduled payouts until it is updated."""
    _set_ext_status(em, account, ext_id, "errored")


def mark_validated(em: Emulator, account: str, ext_id: str) -> None:
    """A payout to a new bank account was paid: the account is known to exist."""
    ext = em.store.get(ext_id, account, "bank_account")
    if ext is not None and ext["status"] == "new":
        _set_ext_status(em, account, ext_id, "validated")


def _set_ext_status(em: Emulator, account: str, ext_id: str, status: str) -> None:
    ext = ext_mod.get_external(em, account, ext_id)
    if ext is None or ext["status"] == status:
        return
    before = em.store.get(account, kind="account")
    old = ext["status"]
    ext["status"] = status
    em.store.save(ext)
    ext_mod.sync_account(em, account)
    em.emit(account, "account.external_account.updated", ext, {"status": old})
    onboarding.refresh(em, account, before)


@on_restore
def _restore_ownership_checks(em: Emulator) -> None:
    """After loading a SQLite store: finish ownership verifications that were under way."""
    for account in em.store.accounts_with("bank_account"):
        for ext in ext_mod.all_external_accounts(em, account):
            if ext["status"] == "new" and ext_mod.is_ownership_verified_number(ext):
                em.schedule(em.now(), "connect.bank_ownership", (account, ext["id"]))


@timer("connect.bank_ownership")
def _ownership_verified(em: Emulator, arg: tuple[str, str]) -> None:
    account, ext_id = arg
    ext = em.store.get(ext_id, account, "bank_account")
    if ext is not None and ext["status"] in ("new", "validated"):
        _set_ext_status(em, account, ext_id, "verified")


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


def _read_capabilities(p: Params) -> dict[str, bool] | None:
    sub = p.sub("capabilities")
    if sub is None:
        return None
    out: dict[str, bool] = {}
    for name in sub.keys():
        if name not in capabilities.CAPABILITIES:
            continue  # done() refuses it, naming capabilities[name]
        cap = sub.sub(name)
        assert cap is not None
        requested = cap.boolean("requested")
        cap.done()
        if requested is not None:
            out[name] = requested
    sub.done()
    return out


def _read_schedule(sched: Params, current: dict[str, Any]) -> dict[str, Any]:
    """settings[payouts][schedule]: Stripe keeps only the anchor of the interval in force."""
    interval = sched.string("interval", choices=INTERVALS) or current["interval"]
    delay = current.get("delay_days", MIN_DELAY_DAYS)
    if sched.has("delay_days"):
        raw = sched.raw("delay_days")
        delay = (
            MIN_DELAY_DAYS
            if raw == "minimum"
            else sched.integer("delay_days", min=MIN_DELAY_DAYS, max=365)
        )
    weekly = sched.string("weekly_anchor", choices=set(WEEKDAYS))
    monthly = sched.integer("monthly_anchor", min=1, max=31)
    sched.done()
    schedule: dict[str, Any] = {"delay_days": delay, "interval": interval}
    for key, value, wanted in (("weekly_anchor", weekly, "weekly"),
                               ("monthly_anchor", monthly, "monthly")):  # fmt: skip
        if value is not None and interval != wanted:
            raise invalid(
                f"You can only set {key} when the interval is {wanted}.",
                f"settings[payouts][schedule][{key}]",
            )
        if interval == wanted:
            value = value if value is not None else current.get(key)
            if value is None:
                raise invalid(
                    f"Missing required param: settings[payouts][schedule][{key}].",
                    f"settings[payouts][schedule][{key}]",
                )
            schedule[key] = value
    return schedule


def _read_settings(p: Params, acct: Obj) -> None:
    settings = p.sub("settings")
    if settings is None:
        return
    payouts = settings.sub("payouts")
    if payouts is not None:
        current = acct["settings"]["payouts"]
        sched = payouts.sub("schedule")
        if sched is not None:
            current["schedule"] = _read_schedule(sched, current["schedule"])
        debit = payouts.boolean("debit_negative_balances")
        if debit is not None:
            current["debit_negative_balances"] = debit
        if payouts.has("statement_descriptor"):
            current["statement_descriptor"] = payouts.string("statement_descriptor", max_len=22)
        payouts.done()
    settings.done()


def _read_profile(p: Params, acct: Obj) -> None:
    sub = p.sub("business_profile")
    if sub is None:
        return
    profile = acct["business_profile"]
    for key in ("name", "url", "product_description", "support_email", "support_phone",
                "support_url"):  # fmt: skip
        if sub.has(key):
            profile[key] = sub.string(key, max_len=5000)
    if sub.has("mcc"):
        mcc = sub.string("mcc", max_len=4)
        if mcc is not None and (len(mcc) != 4 or not mcc.isdigit()):
            raise invalid("Invalid MCC: it must be 4 digits.", "business_profile[mcc]")
        profile["mcc"] = mcc
    sub.done()


def _read_tos(p: Params, acct: Obj) -> None:
    tos = p.sub("tos_acceptance")
    if tos is None:
        return
    if acct["type"] != "custom":
        raise invalid(
            "You cannot accept the Terms of Service on behalf of Standard and Express "
            "connected accounts.",
            "tos_acceptance",
        )
    current = acct["tos_acceptance"]
    if tos.has("date"):
        current["date"] = tos.integer("date", min=0)
    for key in ("ip", "user_agent", "service_agreement"):
        if tos.has(key):
            current[key] = tos.string(key, max_len=500)
    tos.done()


def _read_company(p: Params, acct: Obj) -> list[tuple[str, str]]:
    sub = p.sub("company")
    if sub is None:
        return []
    company = company_of(acct)
    for key in ("name", "phone"):
        if sub.has(key):
            company[key] = sub.string(key, max_len=300)
    if sub.has("address"):
        company["address"] = {**company["address"], **(address(sub.sub("address")) or {})}
    for flag in ("directors_provided", "executives_provided", "owners_provided"):
        value = sub.boolean(flag)
        if value is not None:
            company[flag] = value
    tax_id = sub.string("tax_id", max_len=30)
    sub.done()
    if tax_id is None:
        return []
    company["tax_id_provided"] = True
    return [("tax_id", tax_id)]


def _read_individual(ctx: Ctx, p: Params, acct: Obj) -> list[tuple[str, str]]:
    sub = p.sub("individual")
    if sub is None:
        return []
    individual = acct.get("individual")
    if not isinstance(individual, dict):
        individual = new_person(ctx, acct["id"], representative=True)
        acct["individual"] = individual
    return apply_person_params(individual, sub, relationship=False)


def _read_account_data(ctx: Ctx, p: Params, acct: Obj) -> dict[str, list[tuple[str, str]]]:
    """Everything both create and update accept about the business; answers the secrets."""
    for field in ("email",):
        if p.has(field):
            acct[field] = p.string(field, max_len=512)
    if p.has("business_type"):
        acct["business_type"] = p.string("business_type", choices=BUSINESS_TYPES)
    _read_profile(p, acct)
    _read_settings(p, acct)
    _read_tos(p, acct)
    secrets = {"individual": _read_individual(ctx, p, acct), "company": _read_company(p, acct)}
    return {k: v for k, v in secrets.items() if v}


def _record(ctx: Ctx, acct_id: str, secrets: dict[str, list[tuple[str, str]]]) -> None:
    for subject, values in secrets.items():
        onboarding.record_secrets(ctx.em, acct_id, subject, values)


def _add_external(ctx: Ctx, acct_id: str, ext: Obj, make_default: bool, emit: bool = True) -> Obj:
    ext_mod.add_external(ctx.em, acct_id, ext, make_default)
    if ext_mod.is_ownership_verified_number(ext):
        ctx.em.schedule(
            ctx.now + ctx.config.connect_verification_delay_s,
            "connect.bank_ownership",
            (acct_id, ext["id"]),
        )
    if not emit:
        return ext
    saved = ctx.store.get(ext["id"])
    assert saved is not None
    ctx.em.emit(acct_id, "account.external_account.created", saved, None, ctx.request_id,
                ctx.idempotency_key)  # fmt: skip
    return saved


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
    metadata = p.metadata() or {}
    requested = _read_capabilities(p) or {}
    acct_id = ctx.new_id("acct", 16)
    acct = account_object(
        acct_id, ctx.now, country, currency, type_, metadata=metadata, payouts_enabled=False,
        charges_enabled=False, details_submitted=False,
    )  # fmt: skip
    if type_ == "standard":
        acct["controller"] = {"is_controller": False, "type": "account"}
        requested = {"card_payments": True, "transfers": True, **requested}
    acct["settings"]["payouts"]["debit_negative_balances"] = type_ != "custom"
    secrets = _read_account_data(ctx, p, acct)
    ext = ext_mod.read_external_account(ctx, p, acct_id, "external_account")
    p.done()
    ctx.insert(acct, ("email",))
    _record(ctx, acct_id, secrets)
    capabilities.set_capabilities(ctx.em, acct_id, requested)
    if ext is not None:
        _add_external(ctx, acct_id, ext, True, emit=False)
    # A new account is no change: no account.updated, whatever its requirements.
    onboarding.refresh(ctx.em, acct_id, emit=False)
    return _account(ctx, acct_id)


def _account(ctx: Ctx, acct_id: str) -> Obj:
    acct = ctx.store.get(acct_id, kind="account")
    assert acct is not None
    return acct


@route("GET", "/v1/accounts/{id}", perm="accounts")
def retrieve(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    if id == ctx.account:
        return _account(ctx, id)
    return _connected(ctx, id)


@route("POST", "/v1/accounts/{id}", perm="accounts")
def update(ctx: Ctx, p: Params, id: str) -> Obj:
    acct = _connected(ctx, id)
    before = _account(ctx, id)
    if p.has("default_currency"):
        cur = p.currency("default_currency")
        if cur is not None:
            acct["default_currency"] = cur
    if p.has("metadata"):
        acct["metadata"] = merge_metadata(acct["metadata"], p.metadata())
    secrets = _read_account_data(ctx, p, acct)
    requested = _read_capabilities(p)
    ext = ext_mod.read_external_account(ctx, p, id, "external_account")
    p.done()
    ctx.save(acct)
    _record(ctx, id, secrets)
    if requested:
        capabilities.set_capabilities(ctx.em, id, requested)
    if ext is not None:
        _add_external(ctx, id, ext, True)
    if id == ctx.config.platform_account:
        updated = _account(ctx, id)
        previous = onboarding.diff(before, updated)
        if previous:
            ctx.emit("account.updated", updated, previous)
        return updated
    onboarding.ctx_refresh(ctx, id, before)
    return _account(ctx, id)


@route("DELETE", "/v1/accounts/{id}", perm="accounts")
def delete(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    acct = _connected(ctx, id)
    if id == ctx.config.platform_account:
        raise invalid("You cannot delete your own account.", "account")
    ctx.store.delete(acct["id"])
    return {"id": id, "object": "account", "deleted": True}


@route("POST", "/v1/accounts/{id}/reject", perm="accounts")
def reject(ctx: Ctx, p: Params, id: str) -> Obj:
    acct = _connected(ctx, id)
    reason = p.string("reason", required=True, choices=REJECT_REASONS)
    p.done()
    assert reason is not None
    if acct["type"] == "standard" or id == ctx.config.platform_account:
        raise invalid(
            "You can only reject accounts where your platform is liable for negative "
            "balances (Custom and Express accounts).",
            "account",
        )
    before = _account(ctx, id)
    onboarding.reject(ctx.em, id, reason)
    onboarding.ctx_refresh(ctx, id, before)
    return _account(ctx, id)


@route("GET", "/v1/accounts", perm="accounts")
def list_(ctx: Ctx, p: Params) -> Obj:
    _require_platform(ctx)
    platform = ctx.config.platform_account
    return list_response(ctx, p, "account", "/v1/accounts", predicate=lambda o: o["id"] != platform)


# -- external accounts ------------------------------------------------------------------------
def _ext_scope(ctx: Ctx, acct_id: str) -> Obj:
    if acct_id == ctx.account:
        return _account(ctx, acct_id)
    return _connected(ctx, acct_id)


def _get_ext(ctx: Ctx, acct_id: str, ext_id: str) -> Obj:
    ext = ext_mod.get_external(ctx.em, acct_id, ext_id)
    if ext is None:
        raise missing("external account", ext_id)
    return ext


def _emit_for(ctx: Ctx, acct_id: str, type_: str, obj: Obj, prev: dict[str, Any] | None) -> None:
    ctx.em.emit(acct_id, type_, obj, prev, ctx.request_id, ctx.idempotency_key)


@route("POST", "/v1/accounts/{id}/external_accounts", perm="accounts")
def create_external(ctx: Ctx, p: Params, id: str) -> Obj:
    _ext_scope(ctx, id)
    if not p.has("external_account"):
        p.string("external_account", required=True)
    ext = ext_mod.read_external_account(ctx, p, id, "external_account")
    make_default = p.boolean("default_for_currency") or False
    metadata = p.metadata()
    p.done()
    assert ext is not None
    if metadata:
        ext["metadata"] = metadata
    before = _account(ctx, id)
    saved = _add_external(ctx, id, ext, make_default)
    onboarding.ctx_refresh(ctx, id, before)
    return saved


@route("GET", "/v1/accounts/{id}/external_accounts/{ext}", perm="accounts")
def retrieve_external(ctx: Ctx, p: Params, id: str, ext: str) -> Obj:
    p.done()
    _ext_scope(ctx, id)
    return _get_ext(ctx, id, ext)


_CARD_FIELDS = ("name", "address_city", "address_country", "address_line1", "address_line2",
                "address_state", "address_zip")  # fmt: skip


@route("POST", "/v1/accounts/{id}/external_accounts/{ext}", perm="accounts")
def update_external(ctx: Ctx, p: Params, id: str, ext: str) -> Obj:
    _ext_scope(ctx, id)
    obj = _get_ext(ctx, id, ext)
    old = _get_ext(ctx, id, ext)
    if obj["object"] == "bank_account":
        if p.has("account_holder_name"):
            obj["account_holder_name"] = p.string("account_holder_name", max_len=256)
        if p.has("account_holder_type"):
            obj["account_holder_type"] = p.string(
                "account_holder_type", choices={"individual", "company"}
            )
    else:
        for field in _CARD_FIELDS:
            if p.has(field):
                obj[field] = p.string(field, max_len=200)
        month = p.integer("exp_month", min=1, max=12)
        year = p.integer("exp_year", min=2000, max=2100)
        obj["exp_month"] = month or obj["exp_month"]
        obj["exp_year"] = year or obj["exp_year"]
    touched = bool(p.keys())
    if p.has("metadata"):
        obj["metadata"] = merge_metadata(obj["metadata"], p.metadata())
    make_default = p.boolean("default_for_currency")
    p.done()
    before = _account(ctx, id)
    if make_default and not obj["default_for_currency"]:
        current = default_external_account(ctx.em, id, obj["currency"])
        if current is not None:
            current["default_for_currency"] = False
            ctx.store.save(current)
        obj["default_for_currency"] = True
    if touched and obj["status"] == "errored":
        obj["status"] = "new"  # updated details: Stripe resumes scheduled payouts
    ctx.store.save(obj)
    ext_mod.sync_account(ctx.em, id)
    previous = onboarding.diff(old, obj)
    if previous:
        _emit_for(ctx, id, "account.external_account.updated", obj, previous)
    onboarding.ctx_refresh(ctx, id, before)
    return obj


@route("DELETE", "/v1/accounts/{id}/external_accounts/{ext}", perm="accounts")
def delete_external(ctx: Ctx, p: Params, id: str, ext: str) -> Obj:
    p.done()
    acct = _ext_scope(ctx, id)
    obj = _get_ext(ctx, id, ext)
    others = [b for b in ext_mod.all_external_accounts(ctx.em, id) if b["id"] != ext]
    if obj["default_for_currency"] and obj["currency"] == acct["default_currency"] and others:
        raise invalid(
            "You cannot delete the default external account for your default currency. Please "
            "make another external account the default using the `default_for_currency` "
            "param, and then delete this one.",
            "id",
        )
    before = _account(ctx, id)
    ctx.store.delete(ext)
    ext_mod.sync_account(ctx.em, id)
    _emit_for(ctx, id, "account.external_account.deleted", obj, None)
    onboarding.ctx_refresh(ctx, id, before)
    return {"id": ext, "object": obj["object"], "deleted": True}


@route("GET", "/v1/accounts/{id}/external_accounts", perm="accounts")
def list_external(ctx: Ctx, p: Params, id: str) -> Obj:
    _ext_scope(ctx, id)
    kind = p.string("object", choices={"bank_account", "card"})
    limit = p.integer("limit", min=1, max=100) or 10
    starting_after = p.string("starting_after")
    ending_before = p.string("ending_before")
    p.done()
    items = [e for e in ext_mod.all_external_accounts(ctx.em, id)[::-1]
             if kind is None or e["object"] == kind]  # fmt: skip
    ids = [e["id"] for e in items]
    for cursor, param in ((starting_after, "starting_after"), (ending_before, "ending_before")):
        if cursor is not None and cursor not in ids:
            raise missing("external account", cursor, param)
    if starting_after is not None:
        items = items[ids.index(starting_after) + 1 :]
        page, has_more = items[:limit], len(items) > limit
    elif ending_before is not None:
        items = items[: ids.index(ending_before)]
        page, has_more = items[-limit:], len(items) > limit
    else:
        page, has_more = items[:limit], len(items) > limit
    url = f"/v1/accounts/{id}/external_accounts"
    return {"object": "list", "data": page, "has_more": has_more, "url": url}


# -- capabilities -----------------------------------------------------------------------------
def _check_capability(name: str) -> None:
    if name not in capabilities.CAPABILITIES:
        raise invalid(f"No such capability: '{name}'", "capability", code="resource_missing")


@route("GET", "/v1/accounts/{id}/capabilities", perm="accounts")
def list_capabilities(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    _ext_scope(ctx, id)
    items = capabilities.capability_items(ctx.em, id)
    data = [capabilities.capability_object(ctx.em, id, name) for name in sorted(items)]
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
    _check_capability(name)
    return capabilities.capability_object(ctx.em, id, name)


@route("POST", "/v1/accounts/{id}/capabilities/{name}", perm="accounts")
def update_capability(ctx: Ctx, p: Params, id: str, name: str) -> Obj:
    _connected(ctx, id)
    _check_capability(name)
    requested = p.boolean("requested")
    p.done()
    if requested is not None:
        before = _account(ctx, id)
        capabilities.set_capabilities(ctx.em, id, {name: requested})
        onboarding.ctx_refresh(ctx, id, before)
    return capabilities.capability_object(ctx.em, id, name)


def settlement(em: Emulator, account: str, amount: int, currency: str) -> tuple[int, str]:
    """`amount` of `currency` in the account's settlement currency (converted if needed)."""
    target = money.settlement_currency(em, account, currency)
    if target == currency:
        return amount, currency
    rate = money.exchange_rate(em, currency, target)
    return money.convert(amount, currency, target, rate), target
