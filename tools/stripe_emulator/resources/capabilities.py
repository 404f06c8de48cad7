"""Capabilities of connected accounts: which are requested, and their status.

The status itself (active, pending, inactive) is settled by `onboarding.refresh` from the
account's requirements; `unrequested` until requested, `inactive` once un-requested.
"""

from __future__ import annotations

from typing import Any

from ..state import Emulator
from ..store import Obj

__all__ = [
    "CAPABILITIES",
    "capability_items",
    "capability_object",
    "empty_requirements",
    "requested_capabilities",
    "set_capabilities",
    "store_capabilities",
]

CAPABILITIES = frozenset(
    "card_payments transfers acss_debit_payments affirm_payments afterpay_clearpay_payments "
    "bancontact_payments card_issuing eps_payments giropay_payments ideal_payments "
    "klarna_payments legacy_payments link_payments sepa_debit_payments sofort_payments "
    "tax_reporting_us_1099_k tax_reporting_us_1099_misc us_bank_account_ach_payments "
    "cashapp_payments p24_payments".split()
)


def empty_requirements() -> dict[str, Any]:
    return {
        "alternatives": [], "current_deadline": None, "currently_due": [],
        "disabled_reason": None, "errors": [], "eventually_due": [], "past_due": [],
        "pending_verification": [],
    }  # fmt: skip


def _capset_id(acct_id: str) -> str:
    return f"capset_{acct_id}"


def capability_items(em: Emulator, acct_id: str) -> dict[str, dict[str, Any]]:
    found = em.store.get(_capset_id(acct_id))
    return dict(found["items"]) if found else {}


def store_capabilities(em: Emulator, acct_id: str, items: dict[str, dict[str, Any]]) -> None:
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
    store_capabilities(em, acct_id, items)


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
