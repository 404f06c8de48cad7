from __future__ import annotations

import re
from typing import Literal

__all__ = [
    "DECLINE_ADVICE",
    "Advice",
    "AuthFailed",
    "CardDeclined",
    "Conflict",
    "Forbidden",
    "GatewayError",
    "IdempotencyConflict",
    "InvalidRequest",
    "NotFound",
    "RateLimited",
    "StripeUnavailable",
    "decline_advice",
    "redact",
]

Advice = Literal["retry_later", "dunning", "customer_action", "never"]

# STRIPE-FACTS.md, "Decline codes". Keys are decline codes or card-error codes.
_GROUPS: dict[Advice, tuple[str, ...]] = {
    "retry_later": (
        "processing_error", "try_again_later", "issuer_not_available", "reenter_transaction",
    ),
    "dunning": ("insufficient_funds", "card_velocity_exceeded", "withdrawal_count_limit_exceeded"),
    "customer_action": (
        "incorrect_cvc", "incorrect_number", "expired_card", "authentication_required",
        "call_issuer", "do_not_honor", "generic_decline", "card_not_supported",
        "currency_not_supported",
    ),
    "never": (
        "lost_card", "stolen_card", "pickup_card", "fraudulent", "merchant_blacklist",
        "security_violation", "revocation_of_authorization", "do_not_try_again",
    ),
}  # fmt: skip
DECLINE_ADVICE: dict[str, Advice] = {
    code: advice for advice, codes in _GROUPS.items() for code in codes
}


def decline_advice(decline_code: str | None) -> Advice:
    """What to do after a decline: retry_later | dunning | customer_action | never.

    An unknown or missing code asks the customer to act: retrying a card blindly risks
    issuer penalties, giving up on a good customer loses the sale.
    """
    if decline_code is None:
        return "customer_action"
    return DECLINE_ADVICE.get(decline_code, "customer_action")


_KEY = re.compile(r"\b([srp]k_(?:test|live)_)[A-Za-z0-9]+?([A-Za-z0-9]{4})\b")
_PAN = re.compile(r"(?<!\d)\d{9,15}(\d{4})(?!\d)")


def redact(text: str) -> str:
    """Mask API keys and card-number-like digit runs (13-19 digits) in a message."""
    return _PAN.sub(r"************\1", _KEY.sub(r"\1****\2", text))


class GatewayError(Exception):
    """A Stripe call failed. Carries what a service needs to log, trace and map it."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        operation: str | None = None,
        idempotency_key: str | None = None,
        attempts: int = 0,
    ) -> None:
        self.message = redact(message)
        super().__init__(self.message)
        self.http_status = http_status
        self.code = code
        self.request_id = request_id
        # Filled in by the gateway once it knows how the call went.
        self.operation = operation
        self.idempotency_key = idempotency_key
        self.attempts = attempts
        # Some attempt may have taken effect at Stripe and no later answer settled it.
        self.ambiguous = False

    def __str__(self) -> str:
        where = f"stripe {self.operation}: " if self.operation else ""
        rid = f" (request {self.request_id})" if self.request_id else ""
        return f"{where}{self.message}{rid}"


class CardDeclined(GatewayError):
    """402 card_error. `advice` says whether and when the same card may be tried again."""

    def __init__(
        self,
        message: str,
        *,
        decline_code: str | None = None,
        advice: Advice | None = None,
        payment_intent_id: str | None = None,
        charge_id: str | None = None,
        code: str | None = "card_declined",
        http_status: int | None = 402,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, http_status=http_status, code=code, request_id=request_id)
        self.decline_code = decline_code
        self.advice: Advice = advice or decline_advice(decline_code or code)
        self.payment_intent_id = payment_intent_id
        self.charge_id = charge_id


class InvalidRequest(GatewayError):
    """400 (or another 4xx without its own class): our request is wrong; never retried."""

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        http_status: int | None = 400,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, http_status=http_status, code=code, request_id=request_id)
        self.param = param


class IdempotencyConflict(GatewayError):
    """400 idempotency_error: the key was used before with different parameters."""


class NotFound(GatewayError):
    """404: the object does not exist (or not on this account)."""


class AuthFailed(GatewayError):
    """401: the API key is missing, wrong, expired or revoked."""


class Forbidden(GatewayError):
    """403: the key may not do this (restricted key permissions, Connect account access)."""


class Conflict(GatewayError):
    """409 after every attempt: the object stayed locked or the same key is still running."""


class RateLimited(GatewayError):
    """429 after every attempt. `reason` is Stripe-Rate-Limited-Reason, or the error code."""

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        code: str | None = None,
        http_status: int | None = 429,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, http_status=http_status, code=code, request_id=request_id)
        self.reason = reason


class StripeUnavailable(GatewayError):
    """Stripe could not be reached or kept failing (connection errors, 5xx), or the breaker is open.

    `ambiguous`: some attempt of this call may have taken effect at Stripe (the connection
    dropped after sending, a timeout, a 5xx). Retry later with the SAME idempotency key, or
    reconcile from webhooks. `breaker_open`: failed fast without touching the network.
    """

    def __init__(
        self,
        message: str,
        *,
        ambiguous: bool = False,
        breaker_open: bool = False,
        http_status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, http_status=http_status, code=code, request_id=request_id)
        self.ambiguous = ambiguous
        self.breaker_open = breaker_open
