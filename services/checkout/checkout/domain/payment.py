"""The payment and its order-tolerant state machine.

Stripe's events arrive in any order and more than once; `observe` applies a PaymentIntent
status only when it moves the payment forward, so a late or repeated event never moves a
payment backwards.

The rules for a new payment's input are in validation.py.

    CheckoutError
    ├── InvalidPayment          bad amount, currency, metadata (INVALID_ARGUMENT)
    ├── PaymentNotFound         (NOT_FOUND)
    └── RefundNotAllowed        nothing or not enough left to refund, wrong state
                                (FAILED_PRECONDITION)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from .validation import CURRENCIES, validate_new_payment

__all__ = [
    "CURRENCIES",
    "REFUND_OPEN",
    "REFUND_UNDONE",
    "CaptureMethod",
    "Decline",
    "NextAction",
    "Payment",
    "RadarOutcome",
    "Refund",
    "Settlement",
    "Status",
    "status_from_stripe",
    "validate_new_payment",
]


class Status(StrEnum):
    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    REQUIRES_CAPTURE = "requires_capture"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def terminal(self) -> bool:
        return self in (Status.SUCCEEDED, Status.FAILED, Status.CANCELED)


# Progress order; terminal states share the top rank and are final.
_RANK = {
    Status.PENDING: 0,
    Status.REQUIRES_ACTION: 1,
    Status.PROCESSING: 2,
    Status.REQUIRES_CAPTURE: 3,
    Status.SUCCEEDED: 4,
    Status.FAILED: 4,
    Status.CANCELED: 4,
}


class CaptureMethod(StrEnum):
    AUTOMATIC = "automatic"
    MANUAL = "manual"


def status_from_stripe(pi_status: str, had_error: bool = False) -> Status:
    """Map a PaymentIntent status. `requires_payment_method` after an attempt is a failure."""
    mapping = {
        "requires_action": Status.REQUIRES_ACTION,
        "requires_confirmation": Status.PENDING,
        "processing": Status.PROCESSING,
        "requires_capture": Status.REQUIRES_CAPTURE,
        "succeeded": Status.SUCCEEDED,
        "canceled": Status.CANCELED,
    }
    if pi_status == "requires_payment_method":
        return Status.FAILED if had_error else Status.PENDING
    return mapping.get(pi_status, Status.PENDING)


@dataclass
class NextAction:
    type: str
    redirect_url: str = ""
    client_secret: str = ""


@dataclass
class Decline:
    code: str
    decline_code: str
    message: str


@dataclass(frozen=True)
class RadarOutcome:
    """Stripe's `charge.outcome` of the authorisation: Radar's verdict."""

    type: str = ""  # authorized | manual_review | issuer_declined | blocked | invalid
    risk_level: str = ""  # normal | elevated | highest
    risk_score: int | None = None
    reason: str = ""


@dataclass
class Payment:
    id: str
    amount: int
    currency: str
    customer_ref: str
    payment_method: str
    capture_method: CaptureMethod
    description: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    status: Status = Status.PENDING
    amount_refunded: int = 0
    stripe_payment_intent_id: str = ""
    stripe_charge_id: str = ""
    next_action: NextAction | None = None
    decline: Decline | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    version: int = 0  # optimistic concurrency: bumped by every saved change
    amount_captured: int = 0
    cancellation_reason: str = ""
    authorized_at: float | None = None  # Stripe's clock (the charge's `created`)
    card_fingerprint: str = ""
    card_country: str = ""
    ip_address: str = ""
    ip_country: str = ""
    email: str = ""
    shipping_country: str = ""
    customer_created_at: float | None = None
    fraud_decision: str = ""  # the live pre-authorisation decision
    fraud_final_decision: str = ""  # after Radar joined in
    radar: RadarOutcome | None = None
    review_id: str = ""
    confirm_later: bool = False
    caller: str = ""  # who created it: owner checks and who may see its client_secret

    def observe(self, status: Status) -> bool:
        """Apply a status seen at Stripe; returns whether the payment moved."""
        if self.status.terminal or _RANK[status] <= _RANK[self.status]:
            # Manual capture: requires_capture -> succeeded/canceled still moves (rank 3 -> 4).
            return False
        self.status = status
        if status is not Status.REQUIRES_ACTION:
            self.next_action = None
        return True

    @property
    def refundable(self) -> int:
        if self.status is not Status.SUCCEEDED:
            return 0
        return max(self.captured - self.amount_refunded, 0)

    @property
    def captured(self) -> int:
        """What was captured: the whole amount unless a partial capture said otherwise."""
        if self.status is not Status.SUCCEEDED:
            return 0
        return self.amount_captured or self.amount


@dataclass(frozen=True)
class Settlement:
    """How Stripe settled a movement: its balance transaction (settlement currency, signed)."""

    balance_transaction_id: str
    currency: str
    gross: int
    fee: int
    net: int
    exchange_rate: str = ""
    available_on: int = 0


# A refund's status mirrors Stripe's once Stripe has it; before that it is "pending" with no
# stripe_refund_id: reserved against the payment, not yet known to have reached Stripe.
REFUND_OPEN = frozenset({"pending", "requires_action"})  # may still succeed or fail
REFUND_UNDONE = frozenset({"failed", "canceled"})  # its amount is refundable again


@dataclass
class Refund:
    id: str
    payment_id: str
    amount: int
    currency: str
    reason: str
    status: str = "pending"
    stripe_refund_id: str = ""
    created_at: float = 0.0
    failure_reason: str = ""
