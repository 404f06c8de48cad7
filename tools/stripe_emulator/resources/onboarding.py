"""Connected accounts' onboarding: requirements that move as test data arrives.

What a connected account must provide depends on its type, country and business type (US
lists below; other countries drop the state and the SSN). Until the initial fields are in,
they are `currently_due` and `past_due` at once (nothing is enabled without them) and the
account's `disabled_reason` is `requirements.past_due`. Once the identity fields of a person
(or a company's tax id) are in, a verification starts: its fields are
`pending_verification` and it resolves on the emulator clock after
`config.connect_verification_delay_s`, or at once for Stripe's "immediate" test values. The
outcome follows Stripe's test values (docs.stripe.com/connect/testing):

- date of birth 1901-01-01: verified; 1902-01-01: verified at once; 1900-01-01: an OFAC
  alert (disabled_reason `listed` until `POST /_emulator/accounts/{id}/review`); any other:
  failed, `<person>.verification.document` becomes due (`verification_failed_keyed_identity`);
- id_number 000000000 or ssn_last_4 0000: verified; 222222222: verified at once; 111111111:
  failed (`verification_failed_id_number_match`); other values do not change the outcome;
- address line1 address_full_match: verified; address_no_match: line1 due again, payouts off
  but charges on; address_line1_no_match: the address due again, both off;
- company tax_id 000000000 / 000000001: verified; 222222222: at once; 111111111 / 111111112:
  failed (`verification_failed_tax_id_match` / `verification_failed_tax_id_not_issued`);
- verification document front file_identity_document_success: verified (wins over the date
  of birth and id number); file_identity_document_failure: failed;
- business_profile.url https://disallowed.stripe.com and the other documented tokens: their
  `invalid_url_*` error; https://accessible.stripe.com (or any other URL): verified.

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

import hashlib
from typing import TYPE_CHECKING, Any

import orjson

from ..router import control
from ..state import Ctx, Emulator, on_restore, timer
from ..store import Obj
from . import external_accounts as ext_mod

if TYPE_CHECKING:
    from ..app import EmulatorApp

__all__ = [
    "CAPABILITIES",
    "capability_items",
    "capability_object",
    "diff",
    "empty_requirements",
    "record_secrets",
    "refresh",
    "requested_capabilities",
    "set_capabilities",
    "state_of",
]

DAY = 86_400
CAPABILITIES = frozenset(
    "card_payments transfers acss_debit_payments affirm_payments afterpay_clearpay_payments "
    "bancontact_payments card_issuing eps_payments giropay_payments ideal_payments "
    "klarna_payments legacy_payments link_payments sepa_debit_payments sofort_payments "
    "tax_reporting_us_1099_k tax_reporting_us_1099_misc us_bank_account_ach_payments "
    "cashapp_payments p24_payments".split()
)
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

_REASONS = {
    "verification_failed_keyed_identity": "The identity information you entered cannot be "
    "verified. Please correct any errors or upload a document that matches the identity fields "
    "(e.g., name and date of birth) that you entered.",
    "verification_failed_id_number_match": "The ID number provided does not match the identity "
    "of the person.",
    "verification_failed_address_match": "The address provided could not be verified.",
    "verification_document_failed_other": "The provided identity document could not be verified.",
    "verification_failed_tax_id_match": "The tax ID that you provided couldn't be verified with "
    "the tax authority.",
    "verification_failed_tax_id_not_issued": "The tax ID that you provided was not issued by "
    "the tax authority.",
    "invalid_value_other": "A payout to the external account failed. Update it or add a new "
    "one to resume payouts.",
}
_URL_ERRORS = {
    "https://disallowed.stripe.com": "invalid_url_denylisted",
    "https://geoblocked.stripe.com": "invalid_url_website_inaccessible_geoblocked",
    "https://problem.stripe.com": "invalid_url_website_other",
    "https://missing.stripe.com": "invalid_url_website_incomplete",
    "https://mismatch.stripe.com": "invalid_url_website_business_information_mismatch",
    "https://passwordprotected.stripe.com": "invalid_url_website_inaccessible_password_protected",
    "https://underconstruction.stripe.com": "invalid_url_website_incomplete_under_construction",
    "https://inaccessible.stripe.com": "invalid_url_website_inaccessible",
}


def empty_requirements() -> dict[str, Any]:
    return {
        "alternatives": [], "current_deadline": None, "currently_due": [],
        "disabled_reason": None, "errors": [], "eventually_due": [], "past_due": [],
        "pending_verification": [],
    }  # fmt: skip


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


def _classify_id(value: str) -> str:
    if value in ("000000000", "0000"):
        return "success"
    if value == "222222222":
        return "immediate"
    if value == "111111111":
        return "verification_failed_id_number_match"
    return "neutral"


def _classify_tax_id(value: str) -> str:
    if value in ("000000000", "000000001"):
        return "success"
    if value == "222222222":
        return "immediate"
    if value == "111111111":
        return "verification_failed_tax_id_match"
    if value == "111111112":
        return "verification_failed_tax_id_not_issued"
    return "neutral"


def record_secrets(
    em: Emulator, acct_id: str, subject: str, secrets: list[tuple[str, str]]
) -> None:
    """Remember what secret test values mean (never the values): `subject` is "individual",
    "company" or a person id; each field is id_number, ssn_last_4 or tax_id."""
    if not secrets:
        return
    st = state_of(em, acct_id)
    for field, value in secrets:
        cls = _classify_tax_id(value) if field == "tax_id" else _classify_id(value)
        st["secrets"].setdefault(subject, {})[field] = cls
        if field != "tax_id":
            st["secrets"][subject]["id_field"] = field
    _save_state(em, acct_id, st)


# -- capabilities -------------------------------------------------------------------------
def _capset_id(acct_id: str) -> str:
    return f"capset_{acct_id}"


def capability_items(em: Emulator, acct_id: str) -> dict[str, dict[str, Any]]:
    found = em.store.get(_capset_id(acct_id))
    return dict(found["items"]) if found else {}


def _store_capabilities(em: Emulator, acct_id: str, items: dict[str, dict[str, Any]]) -> None:
    obj: Obj = {"id": _capset_id(acct_id), "object": "emulator.capabilities", "items": items}
    if em.store.get(obj["id"]) is None:
        em.store.insert(acct_id, obj)
    else:
        em.store.save(obj)


def set_capabilities(em: Emulator, acct_id: str, requested: dict[str, bool]) -> None:
    """Request or un-request capabilities; their status is settled by `refresh`."""
    items = capability_items(em, acct_id)
    for name, want in requested.items():
        item = items.get(name)
        if want and (item is None or not item["requested"]):
            status = item["status"] if item else "unrequested"
            items[name] = {"requested": True, "requested_at": em.now(), "status": status}
        elif not want and item is not None and item["requested"]:
            items[name] = {"requested": False, "requested_at": None, "status": "inactive"}
    _store_capabilities(em, acct_id, items)


def requested_capabilities(em: Emulator, acct_id: str) -> list[str]:
    return sorted(n for n, i in capability_items(em, acct_id).items() if i["requested"])


def capability_object(em: Emulator, acct_id: str, name: str) -> Obj:
    item = capability_items(em, acct_id).get(name) or {
        "requested": False, "requested_at": None, "status": "unrequested",
    }  # fmt: skip
    acct = em.store.get(acct_id, kind="account") or {}
    reqs = dict(item.get("requirements") or empty_requirements())
    future = empty_requirements()
    if acct.get("type") == "standard" or not item["requested"]:
        reqs = empty_requirements()
    return {
        "id": name,
        "object": "capability",
        "account": acct_id,
        "future_requirements": future,
        "requested": item["requested"],
        "requested_at": item["requested_at"],
        "requirements": reqs,
        "status": item["status"],
    }


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


def _inputs(subject: str, data: Obj | None, country: str) -> Obj | None:
    """What a verification looks at, or None while it cannot start."""
    if data is None:
        return None
    if subject == "business_profile":
        return {"url": data.get("url")}
    address = (data.get("address") or {}).get("line1")
    if subject == "company":
        if not (data.get("name") and data.get("tax_id_provided") and address):
            return None
        return {"name": data.get("name"), "line1": address}
    dob = data.get("dob") or {}
    has_id = data.get("ssn_last_4_provided") or data.get("id_number_provided")
    needs_id = country == "US"
    if not (data.get("first_name") and data.get("last_name") and address):
        return None
    if None in (dob.get("day"), dob.get("month"), dob.get("year")) or (needs_id and not has_id):
        return None
    document = (((data.get("verification") or {}).get("document")) or {}).get("front")
    return {
        "first": data.get("first_name"), "last": data.get("last_name"),
        "dob": [dob["year"], dob["month"], dob["day"]], "line1": address, "doc": document,
        "id": bool(data.get("id_number_provided")), "ssn": bool(data.get("ssn_last_4_provided")),
    }  # fmt: skip


def _address_failures(prefix: str, line1: Any, country: str) -> dict[str, list[Any]]:
    if line1 == "address_no_match":
        return {f"{prefix}.address.line1": ["verification_failed_address_match", True]}
    if line1 == "address_line1_no_match":
        parts = ["city", "line1", "postal_code"] + (["state"] if country == "US" else [])
        return {f"{prefix}.address.{p}": ["verification_failed_address_match", False]
                for p in parts}  # fmt: skip
    return {}


def _evaluate(
    subject: str, prefix: str, inputs: Obj, secrets: dict[str, str], country: str
) -> tuple[str, dict[str, list[Any]]]:
    """(timing, failures): timing is "immediate", "delayed" or "listed"; failures maps a
    requirement to [error code, payout_only]."""
    failures: dict[str, list[Any]] = {}
    timings: list[str] = []
    if subject == "business_profile":
        code = _URL_ERRORS.get(str(inputs["url"]).rstrip("/"))
        if code is None:
            return "immediate", failures
        failures["business_profile.url"] = [code, False]
        return "delayed", failures
    failures.update(_address_failures(prefix, inputs.get("line1"), country))
    if subject == "company":
        cls = secrets.get("tax_id", "neutral")
        if cls.startswith("verification_"):
            failures["company.tax_id"] = [cls, False]
        timings.append("immediate" if cls == "immediate" else "delayed")
        return ("immediate" if "immediate" in timings else "delayed"), failures
    doc = inputs.get("doc")
    if doc == "file_identity_document_success":
        return "delayed", failures  # a verified document wins over keyed data
    if doc == "file_identity_document_failure":
        failures[f"{prefix}.verification.document"] = ["verification_document_failed_other", False]
        return "delayed", failures
    dob = tuple(inputs["dob"])
    if dob == (1901, 1, 1):
        timings.append("delayed")
    elif dob == (1902, 1, 1):
        timings.append("immediate")
    elif dob == (1900, 1, 1):
        timings.append("listed")
    else:
        code = "verification_failed_keyed_identity"
        failures[f"{prefix}.verification.document"] = [code, False]
    cls = secrets.get("id_number" if inputs.get("id") else "ssn_last_4", "neutral")
    if cls.startswith("verification_"):
        failures[f"{prefix}.{secrets.get('id_field', 'ssn_last_4')}"] = [cls, False]
    elif cls == "immediate":
        timings.append("immediate")
    if "listed" in timings:
        return "listed", failures
    return ("immediate" if "immediate" in timings else "delayed"), failures


def _pending_fields(subject: str, prefix: str, inputs: Obj) -> list[str]:
    if subject == "business_profile":
        return ["business_profile.url"]
    if subject == "company":
        return ["company.name", "company.tax_id"]
    fields = [f"{prefix}.{f}" for f in ("dob.day", "dob.month", "dob.year", "first_name",
                                          "last_name")]  # fmt: skip
    if inputs.get("ssn"):
        fields.append(f"{prefix}.ssn_last_4")
    if inputs.get("id"):
        fields.append(f"{prefix}.id_number")
    if inputs.get("doc"):
        fields.append(f"{prefix}.verification.document")
    return fields


def _signature(inputs: Obj, secrets: dict[str, str]) -> str:
    raw = orjson.dumps({"in": inputs, "s": secrets}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(raw).hexdigest()[:24]


def _run_checks(em: Emulator, view: _View, st: Obj) -> None:
    """Start a verification for every subject whose verified data changed."""
    country = str(view.acct.get("country"))
    subjects = _subjects(view)
    for gone in set(st["checks"]) - set(subjects):
        del st["checks"][gone]
    for subject, (prefix, data) in subjects.items():
        inputs = _inputs(subject, data, country)
        check = st["checks"].get(subject)
        if inputs is None:
            if check is not None and check["status"] == "pending":
                del st["checks"][subject]
            continue
        secrets = st["secrets"].get(subject, {})
        sig = _signature(inputs, secrets)
        if check is not None and check["sig"] == sig:
            continue
        timing, failures = _evaluate(subject, prefix, inputs, secrets, country)
        st["seq"] += 1
        # A website review never holds back an account that has its other details.
        ever = bool(check and check.get("ever_verified")) or subject == "business_profile"
        result = "failed" if failures else ("listed" if timing == "listed" else "verified")
        new: Obj = {
            "sig": sig, "token": st["seq"], "prefix": prefix, "result": result,
            "failed": failures, "ever_verified": ever,
            "pending": sorted(_pending_fields(subject, prefix, inputs)),
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
    due_now = missing | set(failed)
    triggered = st.get("triggered")
    deadline_fields: set[str] = set()
    deadline: int | None = None
    if triggered:
        deadline_fields = {f for f in triggered["fields"] if not view.provided(f)} - pending
        deadline_fields -= due_now
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
            {"code": code, "reason": _REASONS.get(code, "The value could not be verified."),
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
    _store_capabilities(em, acct_id, items)
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
