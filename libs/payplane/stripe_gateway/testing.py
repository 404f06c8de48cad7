"""Fakes for unit tests: of services that use the gateway, and of the gateway itself.

- `FakeGateway`: stands in for `StripeGateway` in a service's unit tests. Script outcomes
  per operation (`respond`), then inspect `calls` (operation, idempotency key, lane). A key
  seen before replays its first settled outcome, as Stripe's idempotency layer does.
- `FakeClock`, `FakeRng`: virtual time and a predictable jitter for `StripeGateway(now=...,
  sleep=..., rng=...)`.
- `stripe_error(...)`, `connection_error(...)`: the exceptions the SDK raises, built the way
  stripe-python 16.1.0 builds them from a response, for scripting `fn` or `FakeGateway`.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import aiohttp
import stripe

from ._config import Lane
from ._errors import Conflict, GatewayError, RateLimited, StripeUnavailable
from ._keys import new_key, validate_key

__all__ = [
    "FakeClock",
    "FakeGateway",
    "FakeRng",
    "RecordedCall",
    "connection_error",
    "settle",
    "stripe_error",
]

T = TypeVar("T")


class FakeClock:
    """Virtual monotonic time.

    auto=True: `sleep(s)` moves time forward by `s` at once (then yields to the loop).
    auto=False: sleepers wait until `advance()` moves time past their deadline.
    Every requested sleep is recorded in `sleeps`.
    """

    def __init__(self, start: float = 1000.0, *, auto: bool = True) -> None:
        self._now = start
        self.auto = auto
        self.sleeps: list[float] = []
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.auto:
            self._now += max(0.0, seconds)
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._now + seconds, future))
        await future

    async def advance(self, seconds: float) -> None:
        """Move time forward, wake the sleepers now due, and let them run."""
        self._now += seconds
        due = [(t, f) for t, f in self._sleepers if t <= self._now]
        self._sleepers = [(t, f) for t, f in self._sleepers if t > self._now]
        for _, future in due:
            if not future.done():
                future.set_result(None)
        await settle()

    def jump(self, seconds: float) -> None:
        """Move time forward without waking anyone (for code that only reads `now`)."""
        self._now += seconds


async def settle(rounds: int = 20) -> None:
    """Yield to the event loop until woken tasks have had their turn."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class FakeRng:
    """`uniform(a, b)` returns a + fraction * (b - a) and records (a, b)."""

    def __init__(self, fraction: float = 1.0) -> None:
        self.fraction = fraction
        self.calls: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float, /) -> float:
        self.calls.append((a, b))
        return a + self.fraction * (b - a)


def stripe_error(
    status: int,
    *,
    code: str | None = None,
    type: str | None = None,
    message: str = "an error from the fake",
    param: str | None = None,
    decline_code: str | None = None,
    payment_intent: str | None = None,
    charge: str | None = None,
    headers: dict[str, str] | None = None,
    request_id: str | None = "req_fake",
) -> stripe.StripeError:
    """The exception stripe-python 16.1.0 raises for an error response with this body."""
    etype = type or _default_type(status)
    err: dict[str, Any] = {"type": etype, "message": message}
    for name, value in (
        ("code", code), ("param", param), ("decline_code", decline_code), ("charge", charge),
    ):  # fmt: skip
        if value is not None:
            err[name] = value
    if payment_intent is not None:
        err["payment_intent"] = {"id": payment_intent, "object": "payment_intent"}
    body = {"error": err}
    raw = json.dumps(body)
    hdrs = dict(headers or {})
    if request_id is not None:
        hdrs.setdefault("request-id", request_id)
    if status == 429 or (status == 400 and code == "rate_limit"):
        return stripe.RateLimitError(message, raw, status, body, hdrs)
    if status in (400, 404):
        if etype == "idempotency_error":
            return stripe.IdempotencyError(message, raw, status, body, hdrs)
        return stripe.InvalidRequestError(  # type: ignore[no-untyped-call]
            message, param, code, raw, status, body, hdrs
        )
    if status == 401:
        return stripe.AuthenticationError(message, raw, status, body, hdrs)
    if status == 402:
        return stripe.CardError(  # type: ignore[no-untyped-call]
            message, param, code, raw, status, body, hdrs
        )
    if status == 403:
        return stripe.PermissionError(message, raw, status, body, hdrs)
    return stripe.APIError(message, raw, status, body, hdrs)


def _default_type(status: int) -> str:
    if status == 402:
        return "card_error"
    if status >= 500:
        return "api_error"
    return "invalid_request_error"


def connection_error(*, sent: bool = True) -> stripe.APIConnectionError:
    """An APIConnectionError as the SDK raises it. sent=False: the connection was refused
    (the request surely did not reach Stripe); sent=True: the server hung up mid-request."""
    cause: Exception = (
        aiohttp.ServerDisconnectedError() if sent else ConnectionRefusedError("refused")
    )
    try:
        raise stripe.APIConnectionError(  # type: ignore[no-untyped-call]
            "Unexpected error communicating with Stripe.", should_retry=True
        ) from cause
    except stripe.APIConnectionError as exc:
        return exc


@dataclass(frozen=True)
class RecordedCall:
    operation: str
    idempotency_key: str  # what Stripe saw: the caller's key, or the one generated for the call
    caller_key: str | None  # what the caller passed
    lane: Lane
    replayed: bool  # answered from an earlier call with the same key


# Outcomes Stripe does not store against a key: a later call with the key runs again.
_UNSETTLED = (StripeUnavailable, RateLimited, Conflict)


class FakeGateway:
    """A scripted `Gateway` for a service's unit tests.

        gw = FakeGateway()
        gw.respond("payment_intents.create", CardDeclined("declined", decline_code="lost_card"))
        ...
        assert gw.keys("payment_intents.create") == [expected_key]

    With no scripted outcome left, `fn` runs against `client` if one was given; otherwise
    the call fails the test, naming the operation.
    """

    def __init__(
        self, client: stripe.StripeClient | None = None, *, stripe_account: str | None = None
    ) -> None:
        self.client = client
        self.stripe_account = stripe_account
        self.calls: list[RecordedCall] = []
        self._script: dict[str, deque[object]] = defaultdict(deque)
        self._settled: dict[str, object] = {}

    def respond(self, operation: str, *outcomes: object) -> None:
        """Queue outcomes for `operation`, used in order: a value is returned, an exception
        (e.g. `CardDeclined(...)`, `StripeUnavailable(..., ambiguous=True)`) is raised."""
        self._script[operation].extend(outcomes)

    def keys(self, operation: str) -> list[str]:
        return [c.idempotency_key for c in self.calls if c.operation == operation]

    def calls_to(self, operation: str) -> list[RecordedCall]:
        return [c for c in self.calls if c.operation == operation]

    async def call(
        self,
        operation: str,
        fn: Callable[[stripe.StripeClient, stripe.RequestOptions], Awaitable[T]],
        *,
        idempotency_key: str | None,
        lane: Lane = Lane.INTERACTIVE,
    ) -> T:
        key = validate_key(idempotency_key) if idempotency_key is not None else new_key()
        replayed = key in self._settled
        self.calls.append(RecordedCall(operation, key, idempotency_key, lane, replayed))
        if replayed:
            outcome = self._settled[key]
        elif self._script[operation]:
            outcome = self._script[operation].popleft()
            if not isinstance(outcome, _UNSETTLED):
                self._settled[key] = outcome
        elif self.client is not None:
            options: stripe.RequestOptions = {"idempotency_key": key}
            if self.stripe_account:
                options["stripe_account"] = self.stripe_account
            return await fn(self.client, options)
        else:
            raise AssertionError(f"FakeGateway: no scripted outcome for {operation!r}")
        if isinstance(outcome, BaseException):
            if isinstance(outcome, GatewayError):
                outcome.operation, outcome.idempotency_key = operation, key
                outcome.attempts = outcome.attempts or 1
            raise outcome
        return cast(T, outcome)
