"""StripeGateway: one per service. Budget, breaker, retries and a span around each call."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import aiohttp
import stripe
from nats.js import JetStreamContext
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from ._account import AccountBudget, AccountBudgetConfig
from ._backoff import full_jitter
from ._breaker import BreakerOpen, BreakerState, CircuitBreaker
from ._budget import RateBudget
from ._classify import Failure, classify
from ._clock import Now, Rng, Sleep, default_now, default_rng, default_sleep
from ._config import GatewayConfig, Lane
from ._errors import Conflict, GatewayError, RateLimited, StripeUnavailable, redact
from ._keys import new_key, validate_key

__all__ = ["Gateway", "StripeCall", "StripeGateway"]

T = TypeVar("T")
StripeCall = Callable[[stripe.StripeClient, stripe.RequestOptions], Awaitable[T]]

log = logging.getLogger("payplane.stripe_gateway")
TRACER_NAME = "payplane.stripe_gateway"


class Gateway(Protocol):
    """What a service's adapters depend on; StripeGateway and testing.FakeGateway provide it."""

    async def call(
        self,
        operation: str,
        fn: Callable[[stripe.StripeClient, stripe.RequestOptions], Awaitable[T]],
        *,
        idempotency_key: str | None,
        lane: Lane = Lane.INTERACTIVE,
    ) -> T: ...


@dataclass
class _Run:
    operation: str
    key: str
    lane: Lane
    attempts: int = 0
    status: int | None = None
    request_id: str | None = None
    ambiguous: bool = False


class StripeGateway:
    """The one way a service talks to Stripe.

    `call(operation, fn, idempotency_key=..., lane=...)` runs `fn(client, options)` until it
    succeeds, fails for good, or runs out of attempts. `options` carries the idempotency key
    (the caller's, or one generated for the whole call) and `stripe_account`, so every
    attempt is the same request as far as Stripe is concerned; pass them on to the SDK:

        customer = await gateway.call(
            "customers.create",
            lambda c, o: c.v1.customers.create_async(params={"email": email}, options=o),
            idempotency_key=deterministic_key("signup", user_id),
        )

    `now`, `sleep` and `rng` are injectable for tests; `tracer_provider` defaults to the
    global one (the library never configures a provider).
    """

    def __init__(
        self,
        config: GatewayConfig,
        *,
        client: stripe.StripeClient | None = None,
        now: Now | None = None,
        sleep: Sleep | None = None,
        rng: Rng | None = None,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self._config = config
        self._now = now or default_now
        self._sleep = sleep or default_sleep
        self._rng = rng or default_rng()
        self._http: stripe.AIOHTTPClient | None = None
        if client is None:
            self._http = stripe.AIOHTTPClient(timeout=aiohttp.ClientTimeout(total=config.timeout_s))
            client = _build_client(config, self._http)
        self._client = client
        self._budget = RateBudget(
            rate=config.max_requests_per_s,
            floor=config.min_requests_per_s,
            decrease_factor=config.rate_decrease_factor,
            increase_per_success=config.rate_increase_per_success,
            decrease_hold_s=config.rate_decrease_hold_s,
            now=self._now,
            sleep=self._sleep,
        )
        self._breaker = CircuitBreaker(
            threshold=config.breaker_failure_threshold,
            failure_rate=config.breaker_failure_rate,
            window=config.breaker_window,
            min_calls=config.breaker_min_calls,
            cooldown_s=config.breaker_cooldown_s,
            now=self._now,
        )
        self._tracer = trace.get_tracer(TRACER_NAME, tracer_provider=tracer_provider)
        self._account: AccountBudget | None = None

    def __repr__(self) -> str:
        return f"StripeGateway(service={self._config.service_name!r})"

    @property
    def config(self) -> GatewayConfig:
        return self._config

    @property
    def client(self) -> stripe.StripeClient:
        """The SDK client (no SDK retries). Calls made on it directly bypass the gateway."""
        return self._client

    @property
    def effective_rate(self) -> float:
        """Requests/s the adaptive cap currently allows (a gauge for metrics)."""
        return self._budget.effective_rate

    @property
    def breaker_state(self) -> BreakerState:
        return self._breaker.state

    def waiting(self) -> dict[Lane, int]:
        """Calls waiting for a token, by lane (a gauge for metrics)."""
        return self._budget.waiting()

    @property
    def account_budget(self) -> AccountBudget | None:
        """The account-wide budget this gateway shares, when it joined one."""
        return self._account

    async def share_account_budget(
        self, js: JetStreamContext, config: AccountBudgetConfig, *, member: str | None = None
    ) -> AccountBudget:
        """Draw from the Stripe account's one budget, shared with every other gateway (all
        replicas of all services) through NATS KV, instead of `max_requests_per_s` alone;
        the local cap becomes this gateway's share. Returns at once, NATS up or not."""
        if self._account is not None:
            raise RuntimeError("this gateway already shares an account budget")
        self._account = AccountBudget(
            js, self._budget, config, service=self._config.service_name, member=member,
            now=self._now,
        )  # fmt: skip
        await self._account.start()
        return self._account

    async def aclose(self) -> None:
        """Stop the budget and close the HTTP session the gateway opened (an injected client
        is the caller's to close)."""
        if self._account is not None:
            await self._account.stop()
        self._budget.close()
        if self._http is not None:
            await self._http.close_async()  # type: ignore[no-untyped-call]

    async def call(
        self,
        operation: str,
        fn: Callable[[stripe.StripeClient, stripe.RequestOptions], Awaitable[T]],
        *,
        idempotency_key: str | None,
        lane: Lane = Lane.INTERACTIVE,
    ) -> T:
        key = validate_key(idempotency_key) if idempotency_key is not None else new_key()
        run = _Run(operation, key, lane)
        with self._tracer.start_as_current_span(
            f"stripe {operation}",
            kind=SpanKind.CLIENT,
            attributes={
                "stripe.operation": operation,
                "stripe.idempotency_key": key,
                "stripe.lane": lane.name.lower(),
                "payplane.service": self._config.service_name,
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                result = await self._attempts(run, fn, span)
            except GatewayError as err:
                err.operation, err.idempotency_key, err.attempts = operation, key, run.attempts
                err.request_id = err.request_id or run.request_id
                self._end(span, run)
                _record_exception(span, err)
                span.set_attribute("error.type", type(err).__name__)
                span.set_status(Status(StatusCode.ERROR, type(err).__name__))
                log.warning(
                    "stripe %s failed: %s status=%s code=%s attempts=%d key=%s request=%s",
                    operation, type(err).__name__, err.http_status, err.code, run.attempts,
                    key, err.request_id,
                )  # fmt: skip
                raise
            except Exception as exc:
                self._end(span, run)
                _record_exception(span, exc)
                span.set_attribute("error.type", type(exc).__name__)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise
            except BaseException:  # cancellation: not an error of Stripe's
                self._end(span, run)
                raise
            self._end(span, run)
            return result

    async def _attempts(
        self,
        run: _Run,
        fn: Callable[[stripe.StripeClient, stripe.RequestOptions], Awaitable[T]],
        span: Span,
    ) -> T:
        cfg = self._config
        for attempt in range(1, cfg.max_attempts + 1):
            try:
                permit = self._breaker.acquire()
            except BreakerOpen:
                raise self._open_error(run) from None
            try:
                await self._budget.acquire(run.lane)
                self._breaker.check(permit)
            except BreakerOpen:
                raise self._open_error(run) from None
            except BaseException:
                self._breaker.release(permit)
                raise
            run.attempts = attempt
            try:
                result = await fn(self._client, self._options(run.key))
            except BaseException as exc:
                failure = classify(exc) if isinstance(exc, Exception) else None
                if failure is None:
                    self._breaker.release(permit)
                    raise
                self._record(run, failure)
                if failure.unavailable:
                    self._breaker.failure(permit)
                else:
                    self._breaker.success(permit)  # Stripe answered: it is up
                if failure.rate_limited:
                    self._budget.on_rate_limited()
                if not failure.retry or attempt == cfg.max_attempts:
                    raise self._final(run, failure) from exc
                delay = full_jitter(attempt - 1, cfg.backoff_base_s, cfg.backoff_cap_s, self._rng)
                span.add_event(
                    "stripe.retry",
                    {
                        "stripe.attempt": attempt,
                        "http.status_code": failure.status or 0,
                        "error.type": type(failure.error).__name__,
                        "stripe.backoff_s": delay,
                    },
                )
                log.info(
                    "stripe %s attempt %d/%d: %s status=%s; retrying in %.3fs key=%s",
                    run.operation, attempt, cfg.max_attempts, type(failure.error).__name__,
                    failure.status, delay, run.key,
                )  # fmt: skip
                await self._sleep(delay)
                continue
            self._breaker.success(permit)
            self._budget.on_success()
            _record_response(run, result)
            return result
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _options(self, key: str) -> stripe.RequestOptions:
        options: stripe.RequestOptions = {"idempotency_key": key, "max_network_retries": 0}
        if self._config.stripe_account:
            options["stripe_account"] = self._config.stripe_account
        return options

    @staticmethod
    def _record(run: _Run, failure: Failure) -> None:
        run.status = failure.status
        run.request_id = failure.request_id or run.request_id
        run.ambiguous = run.ambiguous or failure.ambiguous

    @staticmethod
    def _final(run: _Run, failure: Failure) -> GatewayError:
        err = failure.error
        # Answers that settle the request (a 4xx) end the doubt; throttling and outages do not.
        if isinstance(err, StripeUnavailable | RateLimited | Conflict):
            err.ambiguous = err.ambiguous or run.ambiguous
        return err

    @staticmethod
    def _open_error(run: _Run) -> StripeUnavailable:
        return StripeUnavailable(
            "circuit breaker open: Stripe kept failing, not calling it for now",
            breaker_open=True,
            ambiguous=run.ambiguous,
            http_status=run.status,
        )

    @staticmethod
    def _end(span: Span, run: _Run) -> None:
        span.set_attribute("stripe.attempts", run.attempts)
        if run.status is not None:
            span.set_attribute("http.status_code", run.status)
        if run.request_id is not None:
            span.set_attribute("stripe.request_id", run.request_id)


def _record_exception(span: Span, exc: BaseException) -> None:
    # The stack trace includes the SDK's exception (and its message) as the cause: redact
    # it before it is exported, as GatewayError does with its own message.
    trace_text = "".join(traceback.format_exception(exc))
    span.record_exception(
        exc,
        attributes={
            "exception.message": redact(str(exc)),
            "exception.stacktrace": redact(trace_text),
        },
    )


def _record_response(run: _Run, result: object) -> None:
    response = getattr(result, "last_response", None)
    code = getattr(response, "code", None)
    request_id = getattr(response, "request_id", None)
    run.status = code if isinstance(code, int) else None
    if isinstance(request_id, str):
        run.request_id = request_id


def _build_client(config: GatewayConfig, http: stripe.AIOHTTPClient) -> stripe.StripeClient:
    bases: dict[str, str] = {}
    if config.base_url:
        url = config.base_url.rstrip("/")
        bases = {"api": url, "connect": url, "files": url}
    return stripe.StripeClient(
        config.api_key,
        stripe_account=config.stripe_account,
        base_addresses=bases,  # type: ignore[arg-type]
        http_client=http,
        max_network_retries=0,  # the gateway retries, with one key per call
    )
