"""Identity and business verification outcomes for Stripe's Connect test values.

Pure functions: what a verification looks at (`inputs`), what it concludes (`evaluate`) and
which requirements it holds while it runs (`pending_fields`). The outcomes follow
docs.stripe.com/connect/testing:

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
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from ..store import Obj

__all__ = [
    "REASONS",
    "classify_id",
    "classify_tax_id",
    "evaluate",
    "inputs",
    "pending_fields",
    "signature",
]

REASONS = {
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


def classify_id(value: str) -> str:
    if value in ("000000000", "0000"):
        return "success"
    if value == "222222222":
        return "immediate"
    if value == "111111111":
        return "verification_failed_id_number_match"
    return "neutral"


def classify_tax_id(value: str) -> str:
    if value in ("000000000", "000000001"):
        return "success"
    if value == "222222222":
        return "immediate"
    if value == "111111111":
        return "verification_failed_tax_id_match"
    if value == "111111112":
        return "verification_failed_tax_id_not_issued"
    return "neutral"


def inputs(subject: str, data: Obj | None, country: str) -> Obj | None:
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


def evaluate(
    subject: str, prefix: str, seen: Obj, secrets: dict[str, str], country: str
) -> tuple[str, dict[str, list[Any]]]:
    """(timing, failures): timing is "immediate", "delayed" or "listed"; failures maps a
    requirement to [error code, payout_only]."""
    failures: dict[str, list[Any]] = {}
    timings: list[str] = []
    if subject == "business_profile":
        code = _URL_ERRORS.get(str(seen["url"]).rstrip("/"))
        if code is None:
            return "immediate", failures
        failures["business_profile.url"] = [code, False]
        return "delayed", failures
    failures.update(_address_failures(prefix, seen.get("line1"), country))
    if subject == "company":
        cls = secrets.get("tax_id", "neutral")
        if cls.startswith("verification_"):
            failures["company.tax_id"] = [cls, False]
        timings.append("immediate" if cls == "immediate" else "delayed")
        return ("immediate" if "immediate" in timings else "delayed"), failures
    doc = seen.get("doc")
    if doc == "file_identity_document_success":
        return "delayed", failures  # a verified document wins over keyed data
    if doc == "file_identity_document_failure":
        failures[f"{prefix}.verification.document"] = ["verification_document_failed_other", False]
        return "delayed", failures
    dob = tuple(seen["dob"])
    if dob == (1901, 1, 1):
        timings.append("delayed")
    elif dob == (1902, 1, 1):
        timings.append("immediate")
    elif dob == (1900, 1, 1):
        timings.append("listed")
    else:
        code = "verification_failed_keyed_identity"
        failures[f"{prefix}.verification.document"] = [code, False]
    cls = secrets.get("id_number" if seen.get("id") else "ssn_last_4", "neutral")
    if cls.startswith("verification_"):
        failures[f"{prefix}.{secrets.get('id_field', 'ssn_last_4')}"] = [cls, False]
    elif cls == "immediate":
        timings.append("immediate")
    if "listed" in timings:
        return "listed", failures
    return ("immediate" if "immediate" in timings else "delayed"), failures


def pending_fields(subject: str, prefix: str, seen: Obj) -> list[str]:
    if subject == "business_profile":
        return ["business_profile.url"]
    if subject == "company":
        return ["company.name", "company.tax_id"]
    fields = [f"{prefix}.{f}" for f in ("dob.day", "dob.month", "dob.year", "first_name",
                                          "last_name")]  # fmt: skip
    if seen.get("ssn"):
        fields.append(f"{prefix}.ssn_last_4")
    if seen.get("id"):
        fields.append(f"{prefix}.id_number")
    if seen.get("doc"):
        fields.append(f"{prefix}.verification.document")
    return fields


def signature(inputs: Obj, secrets: dict[str, str]) -> str:
    raw = orjson.dumps({"in": inputs, "s": secrets}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(raw).hexdigest()[:24]
