"""Persons of connected accounts (`/v1/accounts/{id}/persons`), and an individual account's
`individual` (the same Person shape, embedded in the account).

A person never shows its SSN or ID number: only `ssn_last_4_provided` / `id_number_provided`;
what a test value means for verification is kept by `onboarding.record_secrets`. A company's
representative (relationship.representative) is verified like an individual, and its fields
appear in the account's requirements as `person_....dob.day` and so on.
"""

from __future__ import annotations

from typing import Any

from ..errors import invalid, missing
from ..params import Params, merge_metadata
from ..router import route
from ..state import Ctx
from ..store import Obj
from . import onboarding
from .common import list_response

__all__ = ["apply_person_params", "company_of", "new_person"]

_RELATIONSHIP_FLAGS = ("authorizer", "director", "executive", "legal_guardian", "owner",
                       "representative")  # fmt: skip


def _address() -> dict[str, Any]:
    return {"city": None, "country": None, "line1": None, "line2": None, "postal_code": None,
            "state": None}  # fmt: skip


def new_person(ctx: Ctx, acct_id: str, representative: bool = False) -> Obj:
    doc = {"back": None, "details": None, "details_code": None, "front": None}
    return {
        "id": ctx.new_id("person"),
        "object": "person",
        "account": acct_id,
        "additional_tos_acceptances": {"account": {"date": None, "ip": None, "user_agent": None}},
        "address": _address(),
        "created": ctx.now,
        "dob": {"day": None, "month": None, "year": None},
        "email": None,
        "first_name": None,
        "future_requirements": _person_requirements(),
        "id_number_provided": False,
        "last_name": None,
        "metadata": {},
        "phone": None,
        "relationship": {
            "authorizer": None, "director": False, "executive": False, "legal_guardian": False,
            "owner": False, "percent_ownership": None, "representative": representative,
            "title": None,
        },
        "requirements": _person_requirements(),
        "ssn_last_4_provided": False,
        "verification": {
            "additional_document": dict(doc), "details": None, "details_code": None,
            "document": dict(doc), "status": "unverified",
        },
    }  # fmt: skip


def company_of(acct: Obj) -> Obj:
    """An account's `company` hash, created empty the first time company data arrives."""
    company = acct.get("company")
    if not isinstance(company, dict):
        company = {
            "address": _address(), "directors_provided": False, "executives_provided": False,
            "name": None, "owners_provided": False, "phone": None, "tax_id_provided": False,
            "verification": {"document": {"back": None, "details": None, "details_code": None,
                                          "front": None}},
        }  # fmt: skip
        acct["company"] = company
    return company


def _person_requirements() -> dict[str, Any]:
    return {"alternatives": [], "currently_due": [], "errors": [], "eventually_due": [],
            "past_due": [], "pending_verification": []}  # fmt: skip


def _read_address(p: Params, current: dict[str, Any]) -> dict[str, Any]:
    out = dict(current)
    for key in ("city", "country", "line1", "line2", "postal_code", "state"):
        if p.has(key):
            out[key] = p.string(key, max_len=200)
    p.done()
    return out


def _read_dob(p: Params, key: str) -> dict[str, Any] | None:
    if p.raw(key) == "":
        return {"day": None, "month": None, "year": None}
    sub = p.sub(key)
    if sub is None:
        return None
    day = sub.integer("day", required=True, min=1, max=31)
    month = sub.integer("month", required=True, min=1, max=12)
    year = sub.integer("year", required=True, min=1900, max=2100)
    sub.done()
    return {"day": day, "month": month, "year": year}


def _read_documents(p: Params, person: Obj) -> None:
    sub = p.sub("verification")
    if sub is None:
        return
    for which in ("document", "additional_document"):
        doc = sub.sub(which)
        if doc is None:
            continue
        for side in ("front", "back"):
            if doc.has(side):
                person["verification"][which][side] = doc.string(side, max_len=500)
        doc.done()
    sub.done()


def apply_person_params(person: Obj, p: Params, relationship: bool) -> list[tuple[str, str]]:
    """Read a person's parameters into `person` (a Person, or an account's `individual`).

    `relationship` says whether `relationship[...]` is accepted (persons only). Answers the
    secret values given ([(field, value)]) for the caller to hand to
    `onboarding.record_secrets` once the whole request is valid, so that a refused request
    leaves no trace.
    """
    for key in ("email", "first_name", "last_name", "phone"):
        if p.has(key):
            person[key] = p.string(key, max_len=300)
    address = p.sub("address")
    if address is not None:
        person["address"] = _read_address(address, person.get("address") or _address())
    dob = _read_dob(p, "dob")
    if dob is not None:
        person["dob"] = dob
    secrets: list[tuple[str, str]] = []
    ssn = p.string("ssn_last_4", max_len=4)
    if ssn is not None:
        if len(ssn) != 4 or not ssn.isdigit():
            raise invalid("The SSN last 4 must be 4 digits.", p._name("ssn_last_4"))
        secrets.append(("ssn_last_4", ssn))
    id_number = p.string("id_number", max_len=30)
    if id_number is not None:
        secrets.append(("id_number", id_number))
    if p.has("metadata"):
        person["metadata"] = merge_metadata(person.get("metadata") or {}, p.metadata())
    _read_documents(p, person)
    if relationship:
        rel = p.sub("relationship")
        if rel is not None:
            for flag in _RELATIONSHIP_FLAGS:
                value = rel.boolean(flag)
                if value is not None:
                    person["relationship"][flag] = value
            if rel.has("title"):
                person["relationship"]["title"] = rel.string("title", max_len=300)
            if rel.has("percent_ownership"):
                raw = rel.raw("percent_ownership")
                try:
                    person["relationship"]["percent_ownership"] = (
                        None if raw == "" else float(str(raw))
                    )
                except ValueError:
                    raise invalid("Invalid decimal.", rel._name("percent_ownership")) from None
            rel.done()
    p.done()
    for field, _value in secrets:
        person[f"{field}_provided"] = True
    return secrets


# -- API --------------------------------------------------------------------------------------
def _account(ctx: Ctx, acct_id: str) -> Obj:
    if acct_id != ctx.account and not ctx.is_platform:
        raise missing("account", acct_id, "account")
    acct = ctx.store.get(acct_id, ctx.config.platform_account, "account")
    if acct is None or acct_id == ctx.config.platform_account:
        raise missing("account", acct_id, "account")
    return acct


def _get(ctx: Ctx, acct_id: str, person_id: str) -> Obj:
    person = ctx.store.get(person_id, acct_id, "person")
    if person is None:
        raise missing("person", person_id)
    return person


@route("POST", "/v1/accounts/{id}/persons", perm="accounts")
def create(ctx: Ctx, p: Params, id: str) -> Obj:
    acct = _account(ctx, id)
    if acct.get("business_type") == "individual":
        raise invalid(
            "Persons can only be added to accounts with a business_type of company, "
            "government_entity or non_profit. Use `individual` for individual accounts.",
            "account",
        )
    person = new_person(ctx, id)
    person_id = str(person["id"])
    secrets = apply_person_params(person, p, relationship=True)
    before = ctx.store.get(id, kind="account")
    ctx.store.insert(id, person)
    onboarding.record_secrets(ctx.em, id, person_id, secrets)
    ctx.em.emit(id, "person.created", person, None, ctx.request_id, ctx.idempotency_key)
    onboarding.ctx_refresh(ctx, id, before)
    return _get(ctx, id, person_id)


@route("GET", "/v1/accounts/{id}/persons/{person}", perm="accounts")
def retrieve(ctx: Ctx, p: Params, id: str, person: str) -> Obj:
    p.done()
    _account(ctx, id)
    return _get(ctx, id, person)


@route("POST", "/v1/accounts/{id}/persons/{person}", perm="accounts")
def update(ctx: Ctx, p: Params, id: str, person: str) -> Obj:
    _account(ctx, id)
    old = _get(ctx, id, person)
    current = _get(ctx, id, person)
    secrets = apply_person_params(current, p, relationship=True)
    before = ctx.store.get(id, kind="account")
    ctx.store.save(current)
    onboarding.record_secrets(ctx.em, id, person, secrets)
    onboarding.ctx_refresh(ctx, id, before)
    saved = _get(ctx, id, person)
    previous = onboarding.diff(old, saved)
    if previous:
        ctx.em.emit(id, "person.updated", saved, previous, ctx.request_id, ctx.idempotency_key)
    return saved


@route("DELETE", "/v1/accounts/{id}/persons/{person}", perm="accounts")
def delete(ctx: Ctx, p: Params, id: str, person: str) -> Obj:
    p.done()
    _account(ctx, id)
    found = _get(ctx, id, person)
    before = ctx.store.get(id, kind="account")
    ctx.store.delete(person)
    onboarding.ctx_refresh(ctx, id, before)
    ctx.em.emit(id, "person.deleted", found, None, ctx.request_id, ctx.idempotency_key)
    return {"id": person, "object": "person", "deleted": True}


@route("GET", "/v1/accounts/{id}/persons", perm="accounts")
def list_(ctx: Ctx, p: Params, id: str) -> Obj:
    _account(ctx, id)
    wanted: dict[str, bool] = {}
    rel = p.sub("relationship")
    if rel is not None:
        for flag in _RELATIONSHIP_FLAGS:
            value = rel.boolean(flag)
            if value is not None:
                wanted[flag] = value
        rel.done()

    def predicate(o: Obj) -> bool:
        return all(bool(o["relationship"].get(k)) == v for k, v in wanted.items())

    return list_response(
        ctx, p, "person", f"/v1/accounts/{id}/persons", account=id,
        predicate=predicate if wanted else None,
    )  # fmt: skip
