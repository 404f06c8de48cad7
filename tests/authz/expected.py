"""Who may do what: the one table the authorisation suite checks every service against.

Written out by hand on purpose, apart from the services' own PERMISSIONS: a change to a
service's table that this one does not also say fails the suite, and a new method without a
row here fails it too. The services' READMEs say the same in words.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["ACROSS_CALLERS", "EXPECTED", "ROLES"]

# Every caller role the platform knows (tests/e2e/harness.TOKENS gives each a token).
ROLES = ("storefront", "admin", "support", "finance", "reviewer", "ledger")

_CHECKOUT = "payplane.checkout.v1.CheckoutService"
_REVIEWS = "payplane.checkout.v1.ReviewService"
_LEDGER = "payplane.ledger.v1.LedgerService"

_TAKERS = {"storefront", "admin"}
_PAYMENT_READERS = {"storefront", "admin", "support", "reviewer", "ledger"}
_REVIEW_READERS = {"reviewer", "admin", "support"}
_BOOKS = {"admin", "finance"}

# service -> method -> the roles allowed to call it. Anyone else: PERMISSION_DENIED; an unknown
# token or none: UNAUTHENTICATED.
EXPECTED: Mapping[str, Mapping[str, frozenset[str]]] = {
    _CHECKOUT: {
        "CreatePayment": frozenset(_TAKERS),
        "GetPayment": frozenset(_PAYMENT_READERS),
        "GetPaymentTimeline": frozenset(_PAYMENT_READERS),
        "ListPayments": frozenset(_PAYMENT_READERS),
        "RefundPayment": frozenset({"storefront", "admin", "support"}),
        "CapturePayment": frozenset(_TAKERS),
        "CancelPayment": frozenset({"storefront", "admin", "support"}),
        "ConfirmPayment": frozenset(_TAKERS),
    },
    _REVIEWS: {
        "ListReviews": frozenset(_REVIEW_READERS),
        "GetReview": frozenset(_REVIEW_READERS),
        "ApproveReview": frozenset({"reviewer"}),
        "RejectReview": frozenset({"reviewer"}),
    },
    _LEDGER: {
        "GetBalance": frozenset(_BOOKS),
        "ListEntries": frozenset(_BOOKS),
        "GetEntry": frozenset(_BOOKS),
        "GetAccountStatement": frozenset(_BOOKS),
        "RunReconciliation": frozenset(_BOOKS),
        "GetReconciliationRun": frozenset(_BOOKS),
        "ListDiscrepancies": frozenset(_BOOKS),
        "GetDiscrepancy": frozenset(_BOOKS),
        "ResolveDiscrepancy": frozenset(_BOOKS),
    },
}

# Owner checks: (service, method) -> the roles that may use it on a payment another caller
# created. Any other allowed role acts on its own payments only: someone else's is NOT_FOUND.
ACROSS_CALLERS: Mapping[tuple[str, str], frozenset[str]] = {
    (_CHECKOUT, "GetPayment"): frozenset({"admin", "support", "reviewer", "ledger"}),
    (_CHECKOUT, "GetPaymentTimeline"): frozenset({"admin", "support", "reviewer", "ledger"}),
    (_CHECKOUT, "ListPayments"): frozenset({"admin", "support", "reviewer", "ledger"}),
    (_CHECKOUT, "RefundPayment"): frozenset({"admin", "support"}),
    (_CHECKOUT, "CancelPayment"): frozenset({"admin", "support"}),
    (_CHECKOUT, "CapturePayment"): frozenset({"admin"}),
    (_CHECKOUT, "ConfirmPayment"): frozenset({"admin"}),
}
# A payment's Stripe client_secret (in next_action) is shown to its creator and nobody else,
# whatever the role (test_client_secret_only_to_the_creator).
