"""Turn whatever an attempt raised into a retry decision and the error to raise at the end."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import stripe

from ._errors import (
    AuthFailed,
    CardDeclined,
    Conflict,
    Forbidden,
    GatewayError,
    IdempotencyConflict,
    InvalidRequest,
    NotFound,
    RateLimited,
    StripeUnavailable,
)

__all__ = ["Failure", "classify", "header"]

# Transport errors that prove the request never left: the connection was never made.
_NOT_SENT: tuple[type[BaseException], ...] = (
    ConnectionRefusedError,
    aiohttp.ClientConnectorError,
    aiohttp.ConnectionTimeoutError,
)
# httpx (when a service picks stripe.HTTPXClient) is matched by name: it is not a dependency.
_NOT_SENT_NAMES = frozenset({"ConnectError", "ConnectTimeout", "PoolTimeout"})
_TRANSPORT: tuple[type[BaseException], ...] = (
    stripe.APIConnectionError,
    aiohttp.ClientError,
    ConnectionError,
    TimeoutError,
)


@dataclass(frozen=True)
class Failure:
    retry: bool  # worth another attempt with the same key
    unavailable: bool  # evidence that Stripe is down: counts against the circuit breaker
    rate_limited: bool  # a 429 rate_limit: the adaptive cap backs off
    ambiguous: bool  # the attempt may have taken effect at Stripe
    status: int | None
    request_id: str | None
    error: GatewayError  # raised if no attempt is left


def header(headers: object, name: str) -> str | None:
    """Case-insensitive header lookup over dicts, CIMultiDicts and httpx.Headers alike."""
    if not isinstance(headers, Mapping):
        return None
    wanted = name.lower()
    items: Iterable[tuple[Any, Any]] = headers.items()
    for key, value in items:
        if isinstance(key, str) and key.lower() == wanted:
            return str(value)
    return None


def _causes(exc: BaseException) -> Iterable[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        # Only explicit causes: an unrelated __context__ must not make a failure look safe.
        current = current.__cause__


def _surely_not_sent(exc: BaseException) -> bool:
    for cause in _causes(exc):
        if isinstance(cause, _NOT_SENT):
            return True
        if any(cls.__name__ in _NOT_SENT_NAMES for cls in type(cause).__mro__):
            return True
    return False


def classify(exc: BaseException) -> Failure | None:
    """None when `exc` is not a Stripe or transport failure (a bug in the caller: re-raised)."""
    if isinstance(exc, _TRANSPORT):
        ambiguous = not _surely_not_sent(exc)
        return Failure(
            retry=True,
            unavailable=True,
            rate_limited=False,
            ambiguous=ambiguous,
            status=None,
            request_id=None,
            error=StripeUnavailable(
                f"could not reach Stripe ({type(exc).__name__})", ambiguous=ambiguous
            ),
        )
    if not isinstance(exc, stripe.StripeError):
        return None
    status = exc.http_status
    body: Mapping[str, Any] = {}
    if isinstance(exc.json_body, Mapping) and isinstance(exc.json_body.get("error"), Mapping):
        body = exc.json_body["error"]
    code = exc.code or _str(body.get("code"))
    etype = _str(body.get("type"))
    request_id = exc.request_id
    message = exc.user_message or _str(body.get("message")) or type(exc).__name__
    rate_limit = code == "rate_limit" and status in (400, 429)

    if status is None:
        retry = False
    else:
        retry = status in (409, 429) or status >= 500 or rate_limit
    should_retry = header(exc.headers, "Stripe-Should-Retry")
    if should_retry == "true":
        retry = True
    elif should_retry == "false":
        retry = False
    unavailable = status is not None and status >= 500

    error = _error(exc, status, code, etype, body, message, request_id)
    return Failure(
        retry=retry,
        unavailable=unavailable,
        rate_limited=rate_limit,
        ambiguous=unavailable,
        status=status,
        request_id=request_id,
        error=error,
    )


def _error(
    exc: stripe.StripeError,
    status: int | None,
    code: str | None,
    etype: str | None,
    body: Mapping[str, Any],
    message: str,
    request_id: str | None,
) -> GatewayError:
    common: dict[str, Any] = {"http_status": status, "code": code, "request_id": request_id}
    if etype == "idempotency_error" or isinstance(exc, stripe.IdempotencyError):
        return IdempotencyConflict(message, **common)
    if status == 402 or etype == "card_error" or isinstance(exc, stripe.CardError):
        return CardDeclined(
            message,
            decline_code=_str(body.get("decline_code")),
            payment_intent_id=_id(body.get("payment_intent")),
            charge_id=_id(body.get("charge")),
            **common,
        )
    if (status == 429) or (code == "rate_limit" and status == 400):
        reason = header(exc.headers, "Stripe-Rate-Limited-Reason") or code
        return RateLimited(message, reason=reason, **common)
    if status == 401:
        return AuthFailed(message, **common)
    if status == 403:
        return Forbidden(message, **common)
    if status == 404:
        return NotFound(message, **common)
    if status == 409:
        conflict = Conflict(message, **common)
        # The first request with this key is still running: it may yet take effect.
        conflict.ambiguous = code == "idempotency_key_in_use"
        return conflict
    if status is not None and status >= 500:
        return StripeUnavailable(message, ambiguous=True, **common)
    if status is not None and 400 <= status < 500:
        return InvalidRequest(message, param=_str(body.get("param")), **common)
    return GatewayError(message, **common)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _id(value: object) -> str | None:
    """Stripe sends an id or an expanded object (`payment_intent` on a card error)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return _str(value.get("id"))
    return None
