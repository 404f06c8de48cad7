"""Stripe-shaped errors.

StripeError                      any answer that is not a 2xx
├── InvalidRequest (400)         bad or unknown parameter, bad state, idempotency_error
├── AuthenticationError (401)    missing or unknown API key
├── CardError (402)              a card was declined
├── PermissionError_ (403)       a restricted key lacks the permission
├── NotFound (404)               resource_missing, unknown path
├── Conflict (409)               idempotency_key_in_use
├── RateLimited (429)            rate_limit or lock_timeout
└── ApiError (500)               injected faults only: the emulator never 500s on bad input
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApiError",
    "AuthenticationError",
    "CardError",
    "Conflict",
    "InvalidRequest",
    "NotFound",
    "PermissionError_",
    "RateLimited",
    "StripeError",
]


class StripeError(Exception):
    status = 400
    type = "invalid_request_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.headers = headers or {}
        self.extra = extra or {}
        if type is not None:
            self.type = type

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        err: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code is not None:
            err["code"] = self.code
            err["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param is not None:
            err["param"] = self.param
        if self.decline_code is not None:
            err["decline_code"] = self.decline_code
        if request_id is not None:
            err["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}"
        err.update(self.extra)
        return {"error": err}


class InvalidRequest(StripeError):
    status = 400


class AuthenticationError(StripeError):
    status = 401


class CardError(StripeError):
    status = 402
    type = "card_error"


class PermissionError_(StripeError):
    status = 403


class NotFound(StripeError):
    status = 404


class Conflict(StripeError):
    status = 409


class RateLimited(StripeError):
    status = 429


class ApiError(StripeError):
    status = 500
    type = "api_error"


def missing(kind: str, obj_id: str, param: str = "id") -> NotFound:
    return NotFound(f"No such {kind}: '{obj_id}'", code="resource_missing", param=param)


def invalid(message: str, param: str | None = None, code: str | None = None) -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code)
