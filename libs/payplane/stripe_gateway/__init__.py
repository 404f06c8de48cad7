"""The one way a service talks to Stripe: the official SDK (async), made safe to retry.

    gateway = StripeGateway(GatewayConfig(api_key=settings.stripe_api_key, service_name="checkout"))
    intent = await gateway.call(
        "payment_intents.create",
        lambda client, options: client.v1.payment_intents.create_async(params=..., options=options),
        idempotency_key=deterministic_key("checkout", payment_id, "create"),
        lane=Lane.INTERACTIVE,
    )

Every attempt of a call resends the same idempotency key (the caller's, or one generated
for the call), takes a token from a rate budget with priority lanes and an adaptive cap
(AIMD on 429 rate_limit), passes a circuit breaker, and the call is one OpenTelemetry
client span `stripe <operation>`. Retried: connection errors and timeouts, 409, 429 and
5xx, with exponential backoff and full jitter; `Stripe-Should-Retry` overrides both ways.

Stripe's rate limit is per account, shared by every replica of every service. A gateway
that joins the account-wide budget (`await gateway.share_account_budget(js,
AccountBudgetConfig(account_limit=100))`) runs at its share of that limit, agreed with every
other gateway through a NATS JetStream key-value bucket: lanes are served across services in
priority order (interactive, collection, payouts, background), a dead replica's share returns
within `ttl_s`, and without NATS a gateway falls back to `limit x fallback_fraction`.

Errors:

    GatewayError                 a Stripe call failed (operation, idempotency_key, request_id,
    │                            http_status, code, attempts, ambiguous)
    ├── CardDeclined             402: code, decline_code, advice (retry_later | dunning |
    │                            customer_action | never), payment_intent_id, charge_id
    ├── InvalidRequest           400 or another 4xx: param, code; never retried
    ├── IdempotencyConflict      400 idempotency_error: the key was used with other parameters
    ├── NotFound                 404
    ├── AuthFailed               401: the key is wrong, expired or revoked
    ├── Forbidden                403: the key may not do this
    ├── Conflict                 409 on every attempt: object locked / same key still running
    ├── RateLimited              429 on every attempt: reason (Stripe-Rate-Limited-Reason)
    └── StripeUnavailable        breaker open (breaker_open=True, nothing sent), or connection
                                 errors / 5xx on every attempt; ambiguous=True when an attempt
                                 may have taken effect: retry with the SAME key, or reconcile

A service maps StripeUnavailable to UNAVAILABLE, RateLimited to RESOURCE_EXHAUSTED,
CardDeclined to FAILED_PRECONDITION (with the advice), InvalidRequest/IdempotencyConflict to
INVALID_ARGUMENT (or INTERNAL: it is our bug), NotFound to NOT_FOUND, Conflict to ABORTED.
"""

from __future__ import annotations

from ._account import AccountBudget, AccountBudgetConfig, allocate
from ._breaker import BreakerState
from ._config import GatewayConfig, Lane
from ._errors import (
    Advice,
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
    decline_advice,
)
from ._gateway import Gateway, StripeCall, StripeGateway
from ._keys import deterministic_key

__all__ = [
    "AccountBudget",
    "AccountBudgetConfig",
    "Advice",
    "AuthFailed",
    "BreakerState",
    "CardDeclined",
    "Conflict",
    "Forbidden",
    "Gateway",
    "GatewayConfig",
    "GatewayError",
    "IdempotencyConflict",
    "InvalidRequest",
    "Lane",
    "NotFound",
    "RateLimited",
    "StripeCall",
    "StripeGateway",
    "StripeUnavailable",
    "allocate",
    "decline_advice",
    "deterministic_key",
]
