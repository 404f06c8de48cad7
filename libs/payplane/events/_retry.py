from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import nats.errors
import sqlalchemy.exc

from payplane.grpckit import errors as domain
from payplane.stripe_gateway import Conflict, GatewayError, RateLimited, StripeUnavailable

from ._errors import PublishError, RetryableError

__all__ = ["RetryPolicy", "is_retryable", "retry_delay"]

# A failure of one of these (or caused by one, `raise ... from`) says a dependency is away or
# busy, not that the message is wrong: Stripe (unreachable, breaker open, 429, 409 lock, 5xx),
# the database (connection lost, locked, pool exhausted), NATS, or a domain error the service
# itself raises for those (UNAVAILABLE, ABORTED, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED).
_RETRYABLE: tuple[type[BaseException], ...] = (
    RetryableError,
    PublishError,
    StripeUnavailable,
    RateLimited,
    Conflict,
    domain.Unavailable,
    domain.Aborted,
    domain.ResourceExhausted,
    domain.DeadlineExceeded,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.DisconnectionError,
    sqlalchemy.exc.TimeoutError,  # no pooled connection became free in time
    nats.errors.Error,
    ConnectionError,
    TimeoutError,
)

RetryPolicy = Callable[[BaseException], bool]


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 10:
        yield current
        current = current.__cause__
        seen += 1


def is_retryable(exc: BaseException) -> bool:
    """The Consumer's default policy: True when `exc`, or an exception it was raised from,
    says a dependency is away (see the table above); anything else is the message's own
    failure and counts toward dead-lettering."""
    for e in _chain(exc):
        if isinstance(e, _RETRYABLE):
            return True
        if isinstance(e, GatewayError) and (e.http_status or 0) >= 500:
            return True
        if isinstance(e, sqlalchemy.exc.DBAPIError) and e.connection_invalidated:
            return True
    return False


def retry_delay(attempt: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Exponential back-off with jitter: in [d/2, d] for d = min(cap, base * 2**(attempt-1)),
    so replicas retrying the same outage spread out instead of arriving together."""
    ceiling = min(cap_s, base_s * 2 ** min(max(attempt - 1, 0), 32))
    return float(ceiling / 2 + rng.random() * ceiling / 2)
