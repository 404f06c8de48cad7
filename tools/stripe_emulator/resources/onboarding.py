"""Connected accounts' onboarding: requirements that move as test data arrives.

What a connected account must provide depends on its type, country and business type (US
lists below; other countries drop the state and the SSN). Until the initial fields are in,
they are `currently_due` and `past_due` at once (nothing is enabled without them) and the
account's `disabled_reason` is `requirements.past_due`. Once the identity fields of a person
(or a company's tax id) are in, a verification starts: its fields are
`pending_verification` and it resolves on the emulator clock after
`config.connect_verification_delay_s`, or at once for Stripe's "immediate" test values. The
outcome follows Stripe's test values (`verification`).

Future requirements (the full SSN of a US person) are `eventually_due`; the control call
`POST /_emulator/accounts/{id}/requirements/trigger` makes them currently due with a
`current_deadline`, and when the clock passes it they move to `past_due` and the account is
disabled until they are provided. A payout failure marks the external account `errored`:
`external_account` is then past due (payouts stop, charges go on) until it is updated or
replaced.

Capabilities (card_payments, transfers, ...) are `active` with nothing past due, `pending`
while a first verification runs, `inactive` otherwise, `unrequested` until requested;
`charges_enabled` is card_payments being active, `payouts_enabled` also needs a usable
external account. Every change is an `account.updated` event (with `previous_attributes`) and
a `capability.updated` per capability whose status moved, delivered to Connect endpoints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from ..router import control
from ..state import Ctx, Emulator, on_restore, timer
from ..store import Obj
from . import external_accounts as ext_mod
from . import verification
from .capabilities import (
    capability_items,
    capability_object,
    empty_requirements,
    requested_capabilities,
    store_capabilities,
)

if TYPE_CHECKING:
    from ..app import EmulatorApp

__all__ = [
    "ctx_refresh",
    "diff",
    "mark_submitted",
    "outstanding",
    "record_secrets",
    "refresh",
    "reject",
    "state_of",
    "trigger_requirements",
]

DAY = 86_400
_BASE = (
    "business_profile.mcc", "business_profile.url", "external_account", "tos_acceptance.date",
    "tos_acceptance.ip",
)  # fmt: skip
_STANDARD = (
    "business_profile.product_description", "business_profile.support_phone",
    "business_profile.url", "external_account", "tos_acceptance.date", "tos_acceptance.ip",
)  # fmt: skip
_COMPANY = (
    "company.address.city",
    "company.address.line1",
    "company.address.postal_code",
    "company.name",
    "company.owners_provided",
    "company.phone",
    "company.tax_id",
)
# Fields whose absence stops payouts but not charges (address_no_match adds line1 at run time).
_PAYOUT_ONLY = frozenset({"external_account"})


# -- internal state per account -----------------------------------------------------------
def _state_id(acct_id: str) -> str:
    return f"onb_{acct_id}"


def state_of(em: Emulator, acct_id: str) -> Obj:
    found = em.store.get(_state_id(acct_id))
    if found is not None:
        return found
    return {
        "id": _state_id(acct_id), "object": "emulator.onboarding", "secrets": {}, "checks": {},
        "triggered": None, "submitted": False, "rejected": None, "seq": 0,
    }  # fmt: skip


def _save_state(em: Emulator, acct_id: str, st: Obj) -> None:
    if em.store.get(st["id"]) is None:
        em.store.insert(acct_id, st)
    else:
        em.store.save(st)


def record_secrets(
    em: Emulator, acct_id: str, subject: str, secrets: list[tuple[str, str]]
) -> None:
    """Remember what secret test values mean (never the values): `subject` is "individual",
    "company" or a person id; each field is id_number, ssn_last_4 or tax_id."""
    if not secrets:
        return
    st = state_of(em, acct_id)
    for field, value in secrets:
        cls = (
            verification.classify_tax_id(value)
            if field == "tax_id"
            else verification.classify_id(value)
        )
        st["secrets"].setdefault(subject, {})[field] = cls
        if field != "tax_id":
            st["secrets"][subject]["id_field"] = field
    _save_state(em, acct_id, st)


# -- reading what an account provided -------------------------------------------------------
_SECRET_FLAGS = {"ssn_last_4": "ssn_last_4_provided", "id_number": "id_number_provided",
                 "tax_id": "tax_id_provided"}  # fmt: skip


def _persons(em: Emulator, acct_id: str) -> list[Obj]:
    out: list[Obj] = []
    for pid in em.store.iter_ids(acct_id, "person", newest_first=False):
        person = em.store.get(pid)
        if person is not None:
            out.append(person)
    return out


def _representative(persons: list[Obj]) -> Obj | None:
    for person in persons:
        if (person.get("relationship") or {}).get("representative"):
            return person
    return None


def _dig(root: Any, path: list[str]) -> Any:
    if path[-1] in _SECRET_FLAGS and len(path) == 1:
        path = [_SECRET_FLAGS[path[-1]]]
    if path == ["verification", "document"]:
        path = ["verification", "document", "front"]
    for key in path:
        if not isinstance(root, dict):
            return None
        root = root.get(key)
    return root


class _View:
    """An account with its persons and external accounts, asked "is this field provided?"."""

    def __init__(self, em: Emulator, acct: Obj) -> None:
        self.em = em
        self.acct = acct
        self.persons = _persons(em, acct["id"])
        self.rep = _representative(self.persons)
        self.by_id = {p["id"]: p for p in self.persons}
        currency = acct.get("default_currency") or em.config.default_currency
        self.payout_account = ext_mod.default_external_account(em, acct["id"], currency)

    @property
    def rep_prefix(self) -> str:
        return str(self.rep["id"]) if self.rep is not None else "representative"

    def provided(self, field: str) -> bool:
        acct = self.acct
        if field == "external_account":
            ext = self.payout_account
            return ext is not None and ext.get("status") != "errored"
        if field == "business_type":
            return bool(acct.get("business_type"))
        head, *rest = field.split(".")
        if field == "business_profile.url":
            profile = acct.get("business_profile") or {}
            return bool(profile.get("url") or profile.get("product_description"))
        root: Any
        if head in ("individual", "company", "business_profile", "tos_acceptance"):
            root = acct.get(head)
        elif head == "representative":
            root = self.rep
        else:
            root = self.by_id.get(head)
        value = _dig(root, rest)
        return value not in (None, "", False)


def _person_fields(prefix: str, country: str, representative: bool) -> list[str]:
    fields = [f"{prefix}.{f}" for f in (
        "address.city", "address.line1", "address.postal_code", "dob.day", "dob.month",
        "dob.year", "email", "first_name", "last_name", "phone",
    )]  # fmt: skip
    if country == "US":
        fields += [f"{prefix}.address.state", f"{prefix}.ssn_last_4"]
    if representative:
        fields.append(f"{prefix}.relationship.title")
    return fields


def _initial_fields(view: _View) -> list[str]:
    acct = view.acct
    country = str(acct.get("country"))
    if acct.get("type") == "standard":
        return list(_STANDARD)
    business_type = acct.get("business_type")
    fields = list(_BASE)
    if business_type is None:
        fields.append("business_type")
    elif business_type == "individual":
        fields += _person_fields("individual", country, representative=False)
    else:
        fields += list(_COMPANY)
        if country == "US":
            fields.append("company.address.state")
        fields += _person_fields(view.rep_prefix, country, representative=True)
    return sorted(fields)


def _future_fields(view: _View) -> list[str]:
    acct = view.acct
    if acct.get("country") != "US" or acct.get("type") == "standard":
        return []
    if acct.get("business_type") == "individual":
        return ["individual.id_number"]
    if acct.get("business_type") is not None:
        return [f"{view.rep_prefix}.id_number"]
    return []


# -- verifications --------------------------------------------------------------------------
def _subjects(view: _View) -> dict[str, tuple[str, Obj | None]]:
    """subject -> (requirement prefix, the data verified)."""
    acct = view.acct
    out: dict[str, tuple[str, Obj | None]] = {}
    if acct.get("type") == "standard":
        return out
    if acct.get("business_type") == "individual":
        out["individual"] = ("individual", acct.get("individual"))
    elif acct.get("business_type") is not None:
        out["company"] = ("company", acct.get("company"))
        if view.rep is not None:
            out[str(view.rep["id"])] = (str(view.rep["id"]), view.rep)
    url = (acct.get("business_profile") or {}).get("url")
    if url:
        out["business_profile"] = ("business_profile", {"url": url})
    return out


def _run_checks(em: Emulator, view: _View, st: Obj) -> None:
    """Start a verification for every subject whose verified data changed."""
    country = str(view.acct.get("country"))
    subjects = _subjects(view)
    for gone in set(st["checks"]) - set(subjects):
        del st["checks"][gone]
    for subject, (prefix, data) in subjects.items():
        inputs = verification.inputs(subject, data, country)
        check = st["checks"].get(subject)
        if inputs is None:
            if check is not None and check["status"] == "pending":
                del st["checks"][subject]
            continue
        secrets = st["secrets"].get(subject, {})
        sig = verification.signature(inputs, secrets)
        if check is not None and check["sig"] == sig:
            continue
        timing, failures = verification.evaluate(subject, prefix, inputs, secrets, country)
        st["seq"] += 1
        # A website review never holds back an account that has its other details.
        ever = bool(check and check.get("ever_verified")) or subject == "business_profile"
        result = "failed" if failures else ("listed" if timing == "listed" else "verified")
        new: Obj = {
            "sig": sig, "token": st["seq"], "prefix": prefix, "result": result,
            "failed": failures, "ever_verified": ever,
            "pending": sorted(verification.pending_fields(subject, prefix, inputs)),
        }  # fmt: skip
        if timing == "immediate" and not failures:
            new["status"] = "verified"
            new["ever_verified"] = True
        else:
            new["status"] = "pending"
            new["due_at"] = em.now() + em.config.connect_verification_delay_s
            em.schedule(new["due_at"], "connect.verification", (view.acct["id"], subject,
                                                                 new["token"]))  # fmt: skip
        st["checks"][subject] = new


@timer("connect.verification")
def _verification_done(em: Emulator, arg: tuple[str, str, int]) -> None:
    acct_id, subject, token = arg
    st = state_of(em, acct_id)
    check = st["checks"].get(subject)
    if check is None or check["token"] != token or check["status"] != "pending":
        return  # superseded by newer data, or the account was reset
    check["status"] = check["result"]
    if check["result"] == "verified":
        check["ever_verified"] = True
    _save_state(em, acct_id, st)
    refresh(em, acct_id)


@timer("connect.deadline")
def _deadline(em: Emulator, arg: tuple[str, int]) -> None:
    acct_id, token = arg
    st = state_of(em, acct_id)
    triggered = st.get("triggered")
    if not triggered or triggered["token"] != token:
        return
    triggered["passed"] = True
    _save_state(em, acct_id, st)
    refresh(em, acct_id)


@on_restore
def _restore(em: Emulator) -> None:
    """After loading a SQLite store: re-arm pending verifications and deadlines."""
    for acct_id in em.store.accounts_with("emulator.onboarding"):
        st = em.store.get(_state_id(acct_id))
        if st is None:
            continue
        for subject, check in st["checks"].items():
            if check["status"] == "pending":
                em.schedule(check["due_at"], "connect.verification",
                            (acct_id, subject, check["token"]))  # fmt: skip
        triggered = st.get("triggered")
        if triggered and not triggered.get("passed"):
            em.schedule(triggered["deadline"], "connect.deadline", (acct_id, triggered["token"]))


# -- the derived state ----------------------------------------------------------------------
def _person_requirements(prefix: str, reqs: dict[str, Any]) -> dict[str, Any]:
    """An account's requirements as one person sees them (fields relative to the person)."""
    cut = len(prefix) + 1
    out = empty_requirements()
    for key in ("currently_due", "eventually_due", "past_due", "pending_verification"):
        out[key] = [f[cut:] for f in reqs[key] if f.startswith(prefix + ".")]
    out["errors"] = [
        {**e, "requirement": e["requirement"][cut:]}
        for e in reqs["errors"]
        if e["requirement"].startswith(prefix + ".")
    ]
    del out["current_deadline"], out["disabled_reason"]
    return out


def _compute(em: Emulator, view: _View, st: Obj) -> Obj:
    acct = view.acct
    initial = _initial_fields(view)
    future = _future_fields(view)
    failed: dict[str, list[Any]] = {}
    pending: set[str] = set()
    blocking_pending = False
    listed = False
    for check in st["checks"].values():
        if check["status"] == "failed":
            failed.update(check["failed"])
        elif check["status"] == "pending":
            pending.update(check["pending"])
            blocking_pending = blocking_pending or not check["ever_verified"]
        elif check["status"] == "listed":
            listed = True
    ext = view.payout_account
    if ext is not None and ext.get("status") == "errored":
        failed["external_account"] = ["invalid_value_other", True]
    payout_only = set(_PAYOUT_ONLY) | {f for f, (_c, po) in failed.items() if po}

    missing = {f for f in initial if not view.provided(f)} - pending
    triggered = st.get("triggered")
    running = set(triggered["fields"]) if triggered and not triggered.get("passed") else set()
    # A failed verification of a field still within its deadline waits for the deadline too.
    due_now = missing | (set(failed) - running)
    deadline_fields: set[str] = set()
    deadline: int | None = None
    if triggered:
        unmet = {f for f in triggered["fields"] if not view.provided(f)} | set(failed)
        deadline_fields = (unmet & set(triggered["fields"])) - pending - due_now
        if deadline_fields and not triggered.get("passed"):
            deadline = int(triggered["deadline"])
    past_due = due_now | (deadline_fields if triggered and triggered.get("passed") else set())
    currently_due = due_now | deadline_fields
    eventually = currently_due | {f for f in future if not view.provided(f)} - pending
    requested = requested_capabilities(em, acct["id"])
    reqs = empty_requirements()
    reqs.update(
        currently_due=sorted(currently_due), past_due=sorted(past_due),
        eventually_due=sorted(eventually), pending_verification=sorted(pending),
        current_deadline=deadline,
        errors=[
            {"code": code,
             "reason": verification.REASONS.get(code, "The value could not be verified."),
             "requirement": field}
            for field, (code, _po) in sorted(failed.items())
        ],
    )  # fmt: skip
    if "business_profile.url" in currently_due:
        reqs["alternatives"] = [{"alternative_fields_due": ["business_profile.product_description"],
                                 "original_fields_due": ["business_profile.url"]}]  # fmt: skip
    rejected = st.get("rejected")
    if rejected:
        reqs["disabled_reason"] = rejected
    elif listed:
        reqs["disabled_reason"] = "listed"
    elif acct.get("type") != "standard" and not requested:
        reqs["disabled_reason"] = "action_required.requested_capabilities"
    elif past_due:
        reqs["disabled_reason"] = "requirements.past_due"
    elif blocking_pending:
        reqs["disabled_reason"] = "requirements.pending_verification"

    charge_blockers = past_due - payout_only
    if rejected or listed or charge_blockers:
        cap_status = "inactive"
    elif blocking_pending:
        cap_status = "pending"
    else:
        cap_status = "active"
    cap_reqs = dict(reqs)
    cap_reqs["disabled_reason"] = {
        "inactive": "rejected.other" if rejected else (
            "pending.review" if listed else "requirements.fields_needed"),
        "pending": "pending.review", "active": None,
    }[cap_status]  # fmt: skip
    if not missing and acct.get("type") == "custom":
        st["submitted"] = True  # the platform has sent every detail (others use hosted forms)
    payouts = (
        cap_status == "active" and bool(requested) and not past_due and ext is not None
        and ext.get("status") != "errored"
    )  # fmt: skip
    return {
        "requirements": reqs,
        "cap_status": cap_status,
        "cap_requirements": cap_reqs,
        "payouts_enabled": payouts,
        "details_submitted": bool(st["submitted"]),
    }


def _person_view(person: Obj, prefix: str, reqs: dict[str, Any], check: Obj | None) -> None:
    person["requirements"] = _person_requirements(prefix, reqs)
    status = "unverified"
    if check is not None:
        status = {"verified": "verified", "pending": "pending"}.get(check["status"], "unverified")
        if check.get("ever_verified") and check["status"] == "pending":
            status = "verified"
    person["verification"]["status"] = status


def diff(old: Any, new: Any) -> dict[str, Any]:
    """Stripe's previous_attributes: the old value of every changed field, nested objects
    narrowed to their changed keys."""
    out: dict[str, Any] = {}
    for key in list(old) + [k for k in new if k not in old]:
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            sub = diff(a, b)
            if sub:
                out[key] = sub
        else:
            out[key] = a
    return out


def refresh(
    em: Emulator,
    acct_id: str,
    before: Obj | None = None,
    request_id: str | None = None,
    idempotency_key: str | None = None,
    emit: bool = True,
) -> Obj | None:
    """Recompute an account's requirements, capabilities and flags; emit what changed.

    `before` is the account as the request found it (so one account.updated carries every
    change the request made); without it, the account as stored now. `emit=False` for a new
    account: its first state is no change.
    """
    if acct_id == em.config.platform_account:
        return None
    acct = em.store.get(acct_id, kind="account")
    if acct is None:
        return None
    if before is None:
        before = em.store.get(acct_id, kind="account")
    assert before is not None
    st = state_of(em, acct_id)
    view = _View(em, acct)
    _run_checks(em, view, st)
    derived = _compute(em, view, st)
    _save_state(em, acct_id, st)
    reqs = derived["requirements"]
    acct["requirements"] = reqs
    acct["future_requirements"] = empty_requirements()
    items = capability_items(em, acct_id)
    changed: list[tuple[str, str]] = []
    for name, item in items.items():
        status = derived["cap_status"] if item["requested"] else item["status"]
        if status != item["status"]:
            changed.append((name, item["status"]))
        item["status"] = status
        item["requirements"] = derived["cap_requirements"] if item["requested"] else None
    store_capabilities(em, acct_id, items)
    acct["capabilities"] = {n: i["status"] for n, i in sorted(items.items()) if i["requested"]}
    acct["charges_enabled"] = acct["capabilities"].get("card_payments") == "active"
    acct["payouts_enabled"] = derived["payouts_enabled"]
    acct["details_submitted"] = derived["details_submitted"]
    individual = acct.get("individual")
    if isinstance(individual, dict):
        _person_view(individual, "individual", reqs, st["checks"].get("individual"))
    em.store.save(acct)
    moved: list[tuple[Obj, dict[str, Any]]] = []
    for person in view.persons:
        old_person = orjson.loads(orjson.dumps(person))
        _person_view(person, str(person["id"]), reqs, st["checks"].get(str(person["id"])))
        if person != old_person:
            em.store.save(person)
            moved.append((person, diff(old_person, person)))
    if not emit:
        return em.store.get(acct_id, kind="account")
    for person, person_previous in moved:
        em.emit(acct_id, "person.updated", person, person_previous, request_id, idempotency_key)
    for name, old in changed:
        em.emit(acct_id, "capability.updated", capability_object(em, acct_id, name),
                {"status": old}, request_id, idempotency_key)  # fmt: skip
    saved = em.store.get(acct_id, kind="account")
    assert saved is not None
    previous = diff(before, saved)
    if previous:
        em.emit(acct_id, "account.updated", saved, previous, request_id, idempotency_key)
    return saved


def trigger_requirements(
    em: Emulator, acct_id: str, fields: list[str] | None, deadline_days: float
) -> Obj | None:
    """Make future requirements (or `fields`) currently due with a deadline on the clock."""
    acct = em.store.get(acct_id, kind="account")
    if acct is None:
        return None
    st = state_of(em, acct_id)
    view = _View(em, acct)
    wanted = fields if fields is not None else _future_fields(view)
    st["seq"] += 1
    deadline = em.now() + int(deadline_days * DAY)
    st["triggered"] = {"fields": sorted(set(wanted)), "deadline": deadline, "token": st["seq"],
                       "passed": False}  # fmt: skip
    _save_state(em, acct_id, st)
    em.schedule(deadline, "connect.deadline", (acct_id, st["seq"]))
    return refresh(em, acct_id)


def settle_review(em: Emulator, acct_id: str, outcome: str) -> Obj | None:
    """Close a `listed` (OFAC) review: "approve" verifies, "reject" rejects the account."""
    st = state_of(em, acct_id)
    for check in st["checks"].values():
        if check["status"] == "listed":
            if outcome == "approve":
                check["status"] = "verified"
                check["ever_verified"] = True
            else:
                st["rejected"] = "rejected.listed"
    _save_state(em, acct_id, st)
    return refresh(em, acct_id)


def reject(em: Emulator, acct_id: str, reason: str) -> None:
    st = state_of(em, acct_id)
    st["rejected"] = f"rejected.{reason}"
    _save_state(em, acct_id, st)


def mark_submitted(em: Emulator, acct_id: str) -> None:
    st = state_of(em, acct_id)
    st["submitted"] = True
    _save_state(em, acct_id, st)


def outstanding(em: Emulator, acct: Obj, eventually: bool) -> list[str]:
    """What hosted onboarding would collect from `acct` (as given, saved or not) now: its
    currently (or eventually) due fields."""
    st = orjson.loads(orjson.dumps(state_of(em, acct["id"])))
    reqs = _compute(em, _View(em, acct), st)["requirements"]
    return list(reqs["eventually_due" if eventually else "currently_due"])


# -- emulator-only controls -------------------------------------------------------------------
def _connected(app: EmulatorApp, acct_id: str) -> Obj:
    acct = app.em.store.get(acct_id, kind="account")
    if acct is None or acct_id == app.em.config.platform_account:
        raise ValueError(f"no such connected account {acct_id!r}")
    return acct


@control("POST", "/_emulator/accounts/{acct_id}/requirements/trigger")
def trigger_control(app: EmulatorApp, body: dict[str, Any], acct_id: str) -> Obj:
    """Make requirements currently due with a deadline (emulator only), as Stripe does when an
    account reaches a volume threshold (its `tok_visa_triggerNextRequirements` card).

    JSON body: {"fields": [...] (default: the account's eventually due fields),
    "deadline_days": 14 (default `config.connect_requirements_deadline_days`)}. When the clock
    passes the deadline, whatever is still missing is past due and the account is disabled.
    Answers the account.
    """
    _connected(app, acct_id)
    fields = body.get("fields")
    if fields is not None and (
        not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)
    ):
        raise ValueError("fields must be a list of requirement names")
    days = float(body.get("deadline_days", app.em.config.connect_requirements_deadline_days))
    if days <= 0:
        raise ValueError("deadline_days must be positive")
    result = trigger_requirements(app.em, acct_id, fields, days)
    assert result is not None
    return result


@control("POST", "/_emulator/accounts/{acct_id}/review")
def review_control(app: EmulatorApp, body: dict[str, Any], acct_id: str) -> Obj:
    """Close the review an OFAC alert (date of birth 1900-01-01) opened (emulator only).

    JSON body: {"outcome": "approve" | "reject"}. Answers the account.
    """
    _connected(app, acct_id)
    outcome = body.get("outcome")
    if outcome not in ("approve", "reject"):
        raise ValueError('outcome must be "approve" or "reject"')
    result = settle_review(app.em, acct_id, str(outcome))
    assert result is not None
    return result


def ctx_refresh(ctx: Ctx, acct_id: str, before: Obj | None = None) -> Obj | None:
    """`refresh` with the request's id and idempotency key on the events."""
    return refresh(ctx.em, acct_id, before, ctx.request_id, ctx.idempotency_key)
