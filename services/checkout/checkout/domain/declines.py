"""Decline codes grouped by what a retry can achieve (STRIPE-FACTS decline table)."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["BLOCKED_CODE", "INTERRUPTED_CODE", "Advice", "advice_for"]

# The code of a payment checkout's own fraud rules blocked (Stripe was never asked).
BLOCKED_CODE = "blocked_by_fraud_rules"
# The code of a payment whose creation was interrupted before Stripe had it (the sweeper
# failed it: nothing was charged, the same card may be tried again).
INTERRUPTED_CODE = "interrupted_before_stripe"


class Advice(StrEnum):
    RETRY_LATER = "retry_later"  # the same card may succeed later
    MAYBE_LATER = "maybe_later"  # dunning territory
    CUSTOMER_ACTION = "customer_action"  # the customer must fix the card or use another
    NEVER = "never"  # do not retry


_TABLE: dict[str, Advice] = {
    **dict.fromkeys(
        ("processing_error", "try_again_later", "issuer_not_available", "reenter_transaction"),
        Advice.RETRY_LATER,
    ),
    **dict.fromkeys(
        ("insufficient_funds", "card_velocity_exceeded", "withdrawal_count_limit_exceeded"),
        Advice.MAYBE_LATER,
    ),
    **dict.fromkeys(
        (
            "incorrect_cvc",
            "incorrect_number",
            "expired_card",
            "authentication_required",
            "call_issuer",
            "do_not_honor",
            "generic_decline",
            "card_not_supported",
            "currency_not_supported",
        ),
        Advice.CUSTOMER_ACTION,
    ),
    **dict.fromkeys(
        (
            "lost_card",
            "stolen_card",
            "pickup_card",
            "fraudulent",
            "merchant_blacklist",
            "security_violation",
            "revocation_of_authorization",
            "do_not_try_again",
        ),
        Advice.NEVER,
    ),
}


def advice_for(decline_code: str | None, code: str | None = None) -> Advice:
    """What to tell the caller; unknown codes default to asking the customer to act."""
    if decline_code and decline_code in _TABLE:
        return _TABLE[decline_code]
    if code in ("incorrect_cvc", "expired_card", "incorrect_number", "invalid_expiry_year"):
        return Advice.CUSTOMER_ACTION
    if code == BLOCKED_CODE:
        return Advice.NEVER
    if code in ("processing_error", INTERRUPTED_CODE):
        return Advice.RETRY_LATER
    return Advice.CUSTOMER_ACTION
