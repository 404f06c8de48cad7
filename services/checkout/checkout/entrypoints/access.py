"""Owner checks: a caller acts on the payments it created, unless its role spans callers.

The method table (bootstrap.PERMISSIONS) says who may call a method at all; this rule says on
whose payments. A payment another caller created is NOT_FOUND to a caller confined to its own
(the same answer as an id that names nothing: ids are not an oracle for other callers'
business). The table of who acts across callers is bootstrap.ACROSS_CALLERS.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from ..domain.errors import PaymentNotFound
from ..domain.payment import Payment

__all__ = [
    "CANCEL",
    "CAPTURE",
    "CONFIRM",
    "GET",
    "LIST",
    "REFUND",
    "SERVICE",
    "TIMELINE",
    "OwnerRule",
]

SERVICE: Final = "payplane.checkout.v1.CheckoutService"
GET: Final = f"/{SERVICE}/GetPayment"
LIST: Final = f"/{SERVICE}/ListPayments"
REFUND: Final = f"/{SERVICE}/RefundPayment"
CAPTURE: Final = f"/{SERVICE}/CapturePayment"
CANCEL: Final = f"/{SERVICE}/CancelPayment"
CONFIRM: Final = f"/{SERVICE}/ConfirmPayment"
TIMELINE: Final = f"/{SERVICE}/GetPaymentTimeline"


class OwnerRule:
    def __init__(self, across_callers: Mapping[str, Iterable[str]]) -> None:
        self._across = {method: frozenset(c) for method, c in across_callers.items()}

    def across(self, method: str, caller: str) -> bool:
        """Whether `caller` may use `method` on any caller's payments."""
        return caller in self._across.get(method, frozenset())

    def check(self, method: str, caller: str, payment: Payment) -> None:
        if payment.caller != caller and not self.across(method, caller):
            # Word for word the answer for an id that names nothing.
            raise PaymentNotFound(f"payment {payment.id} not found")
