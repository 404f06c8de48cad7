"""The console's roles and what it offers each.

The services decide: the console calls them with the credential of the signed-in user's
role, and a service refuses what that caller may not do. `SHOWN` mirrors the services'
authorisation tables only so that nobody is offered a page or a button the service would
refuse; a request for something not shown still goes to the service, which refuses it.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["SHOWN", "Role", "may"]


class Role(StrEnum):
    REVIEWER = "reviewer"
    FINANCE = "finance"
    SUPPORT = "support"
    ADMIN = "admin"


# checkout: payments readable by reviewer, support, admin; reviews readable by reviewer,
# support, admin and decided by reviewers only. ledger: readable by finance, support, admin;
# discrepancies resolved by finance and admin.
SHOWN: dict[Role, frozenset[str]] = {
    Role.REVIEWER: frozenset({"payments.read", "reviews.read", "reviews.decide"}),
    Role.FINANCE: frozenset({"ledger.read", "discrepancies.read", "discrepancies.resolve"}),
    Role.SUPPORT: frozenset({"payments.read", "reviews.read", "ledger.read", "discrepancies.read"}),
    Role.ADMIN: frozenset(
        {
            "payments.read",
            "reviews.read",
            "ledger.read",
            "discrepancies.read",
            "discrepancies.resolve",
        }
    ),
}


def may(role: Role, capability: str) -> bool:
    """Whether the console offers `capability` to `role` (the service still decides)."""
    return capability in SHOWN[role]
