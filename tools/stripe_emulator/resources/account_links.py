"""Account links (`POST /v1/account_links`): Stripe-hosted onboarding, and a way to finish it.

A link is single-use and expires after `LINK_TTL_S` (Stripe: a few minutes). `account_update`
links exist only for accounts whose requirements the platform collects (custom). The emulator
serves no onboarding pages: `POST /_emulator/account_links/complete {"url": ...}` plays the
connected account filling in the form with Stripe's test values, and answers where the
browser would be sent (`return_url`, or `refresh_url` for an expired or used link).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import invalid
from ..params import Params
from ..router import control, route
from ..state import Ctx, Emulator
from ..store import Obj
from . import external_accounts as ext_mod
from . import onboarding
from .persons import company_of, new_person

if TYPE_CHECKING:
    from ..app import EmulatorApp

__all__ = ["LINK_TTL_S", "complete"]

LINK_TTL_S = 300
TYPES = frozenset({"account_onboarding", "account_update"})
_INTERNAL = ("_account", "_type", "_eventually", "_refresh_url", "_return_url", "_used")
# Date of birth for each verification outcome hosted onboarding can play.
_DOBS = {
    "delayed": (1901, 1, 1),
    "immediate": (1902, 1, 1),
    "failure": (1980, 6, 15),
    "listed": (1900, 1, 1),
}
_TAX_IDS = {"delayed": "000000000", "immediate": "222222222", "failure": "111111111",
            "listed": "000000000"}  # fmt: skip
_ADDRESS = {"line1": "address_full_match", "line2": None, "city": "South San Francisco",
            "state": "CA", "postal_code": "94080"}  # fmt: skip


def _public(link: Obj) -> Obj:
    return {k: v for k, v in link.items() if k not in _INTERNAL and k != "id"}


@route("POST", "/v1/account_links", perm="account_links")
def create(ctx: Ctx, p: Params) -> Obj:
    acct_id = p.string("account", required=True)
    type_ = p.string("type", required=True, choices=TYPES)
    refresh_url = p.string("refresh_url", max_len=2000)
    return_url = p.string("return_url", max_len=2000)
    collect = p.string("collect", choices={"currently_due", "eventually_due"})
    options = p.sub("collection_options")
    if options is not None:
        collect = options.string("fields", choices={"currently_due", "eventually_due"}) or collect
        options.string("future_requirements", choices={"include", "omit"})
        options.done()
    p.done()
    assert acct_id is not None and type_ is not None
    acct = ctx.store.get(acct_id, ctx.config.platform_account, "account")
    if not ctx.is_platform or acct is None or acct_id == ctx.config.platform_account:
        raise invalid(f"No such account: '{acct_id}'", "account", code="resource_missing")
    if type_ == "account_update" and acct["type"] != "custom":
        raise invalid(
            "You cannot create `account_update` type Account Links for accounts with access to "
            "a Stripe-hosted Dashboard (Standard and Express accounts).",
            "type",
        )
    token = ctx.new_id("alink", 24)
    kind = {"custom": "c", "express": "e"}.get(str(acct["type"]), "s")
    link: Obj = {
        "id": token,
        "object": "account_link",
        "created": ctx.now,
        "expires_at": ctx.now + LINK_TTL_S,
        "url": f"https://connect.stripe.com/setup/{kind}/{acct_id}/{token[6:]}",
        "_account": acct_id,
        "_type": type_,
        "_eventually": collect == "eventually_due",
        "_refresh_url": refresh_url,
        "_return_url": return_url,
        "_used": False,
    }
    ctx.insert(link)
    return _public(link)


# -- playing the hosted form ------------------------------------------------------------------
def _fill_person(person: Obj, fields: set[str], prefix: str, dob: tuple[int, int, int],
                 country: str) -> list[tuple[str, str]]:  # fmt: skip
    """Give `person` Stripe's test value for each of its `fields`; answers the secrets."""
    secrets: list[tuple[str, str]] = []
    wanted = {f[len(prefix) + 1 :] for f in fields if f.startswith(prefix + ".")}
    if any(f.startswith("address.") for f in wanted):
        person["address"] = {**_ADDRESS, "country": country}
    if any(f.startswith("dob.") for f in wanted):
        person["dob"] = {"day": dob[2], "month": dob[1], "year": dob[0]}
    defaults = {"first_name": "Jenny", "last_name": "Rosen", "email": "jenny@example.com",
                "phone": "0000000000"}  # fmt: skip
    for key, value in defaults.items():
        if key in wanted:
            person[key] = value
    if "relationship.title" in wanted:
        person["relationship"]["title"] = "CEO"
    if "ssn_last_4" in wanted:
        person["ssn_last_4_provided"] = True
        secrets.append(("ssn_last_4", "0000"))
    if "id_number" in wanted:
        person["id_number_provided"] = True
        secrets.append(("id_number", "000000000"))
    if "verification.document" in wanted:
        person["verification"]["document"]["front"] = "file_identity_document_success"
    return secrets


def complete(em: Emulator, link: Obj, body: dict[str, Any]) -> None:
    """Fill in what the link collects, as the account holder would in Stripe's form."""
    acct_id = str(link["_account"])
    ctx = em.ctx(em.config.platform_account)
    acct = em.store.get(acct_id, kind="account")
    assert acct is not None
    before = em.store.get(acct_id, kind="account")
    outcome = str(body.get("verification", "delayed"))
    country = str(acct["country"])
    eventually = bool(link["_eventually"])
    if acct.get("business_type") is None:
        acct["business_type"] = str(body.get("business_type", "individual"))
    fields = set(onboarding.outstanding(em, acct, eventually))
    profile = acct["business_profile"]
    for field, value in (("mcc", "5734"), ("url", "https://accessible.stripe.com"),
                         ("product_description", "Emulated hosted onboarding"),
                         ("support_phone", "0000000000")):  # fmt: skip
        if f"business_profile.{field}" in fields:
            profile[field] = value
    if any(f.startswith("tos_acceptance.") for f in fields):
        acct["tos_acceptance"].update(date=em.now(), ip="127.0.0.1", user_agent="stripe-emulator")
    dob = _DOBS[outcome]
    secrets: dict[str, list[tuple[str, str]]] = {}
    if acct.get("business_type") == "individual":
        individual = acct.get("individual")
        if not isinstance(individual, dict):
            individual = acct["individual"] = new_person(ctx, acct_id, representative=True)
        secrets["individual"] = _fill_person(individual, fields, "individual", dob, country)
    elif acct.get("business_type") is not None and acct["type"] != "standard":
        _fill_company(em, ctx, acct, fields, outcome, dob, secrets)
    em.store.save(acct)
    for subject, values in secrets.items():
        onboarding.record_secrets(em, acct_id, subject, values)
    if "external_account" in fields:
        number = str(body.get("account_number", "000123456789"))
        currency = str(acct["default_currency"])
        bank = ext_mod.new_bank_account(ctx, acct_id, number, country=country, currency=currency)
        ext_mod.add_external(em, acct_id, bank, True)
        em.emit(acct_id, "account.external_account.created", bank)
    onboarding.mark_submitted(em, acct_id)
    onboarding.refresh(em, acct_id, before)


def _fill_company(
    em: Emulator,
    ctx: Ctx,
    acct: Obj,
    fields: set[str],
    outcome: str,
    dob: tuple[int, int, int],
    secrets: dict[str, list[tuple[str, str]]],
) -> None:
    acct_id = str(acct["id"])
    company = company_of(acct)
    if any(f.startswith("company.address.") for f in fields):
        company["address"] = {**_ADDRESS, "country": acct["country"]}
    for key, value in (("name", "Emulated Goods Inc."), ("phone", "0000000000")):
        if f"company.{key}" in fields:
            company[key] = value
    if "company.owners_provided" in fields:
        company["owners_provided"] = True
    if "company.tax_id" in fields:
        company["tax_id_provided"] = True
        secrets["company"] = [("tax_id", _TAX_IDS[outcome])]
    rep_fields = {f for f in fields if f.startswith(("representative.", "person_"))}
    if not rep_fields:
        return
    rep = next((p for p in _persons(em, acct_id) if p["relationship"]["representative"]), None)
    if rep is None:
        rep = new_person(ctx, acct_id, representative=True)
        rep["relationship"]["executive"] = True
        em.store.insert(acct_id, rep)
        rep_fields = {f.replace("representative.", f"{rep['id']}.", 1) for f in rep_fields}
    prefix = str(rep["id"])
    secrets[prefix] = _fill_person(rep, rep_fields, prefix, dob, str(acct["country"]))
    em.store.save(rep)


def _persons(em: Emulator, acct_id: str) -> list[Obj]:
    found = (em.store.get(i) for i in em.store.iter_ids(acct_id, "person", newest_first=False))
    return [p for p in found if p is not None]


@control("POST", "/_emulator/account_links/complete")
def complete_control(app: EmulatorApp, body: dict[str, Any]) -> dict[str, Any]:
    """Finish the hosted onboarding an account link opens (emulator only).

    JSON body: {"url": the link's url, "verification": "delayed" (default: date of birth
    1901-01-01, verified on the clock) | "immediate" (1902-01-01) | "failure" (an unverifiable
    date of birth, so a document is asked for) | "listed" (1900-01-01, an OFAC alert),
    "business_type": "individual" (when the account has none), "account_number":
    "000123456789" (the bank account given when one is due)}. Fills every currently due
    field (eventually due too when the link was made with collection_options[fields] =
    eventually_due) with Stripe's test values, accepts the terms of service and sets
    details_submitted. Answers {"completed", "redirect", "account"}; an expired or already
    used link completes nothing and redirects to its refresh_url.
    """
    em = app.em
    url = body.get("url")
    if not isinstance(url, str) or "/" not in url:
        raise ValueError("url must be an account link's url")
    outcome = body.get("verification", "delayed")
    if outcome not in _DOBS:
        raise ValueError(f"verification must be one of {sorted(_DOBS)}")
    if body.get("business_type", "individual") not in ("individual", "company"):
        raise ValueError('business_type must be "individual" or "company"')
    numbers = sorted(ext_mod.TEST_ACCOUNT_NUMBERS)
    if body.get("account_number", numbers[0]) not in numbers:
        raise ValueError(f"account_number must be one of {numbers}")
    link = em.store.get("alink_" + url.rstrip("/").rsplit("/", 1)[-1], kind="account_link")
    if link is None:
        raise ValueError(f"no such account link {url!r}")
    acct_id = str(link["_account"])
    if link["_used"] or em.now() >= int(link["expires_at"]):
        return {"completed": False, "redirect": link["_refresh_url"], "account": acct_id}
    link["_used"] = True
    em.store.save(link)
    complete(em, link, body)
    return {"completed": True, "redirect": link["_return_url"], "account": acct_id}
