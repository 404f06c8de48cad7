"""A circuit breaker over attempts that found Stripe unreachable."""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

from ._clock import Now

__all__ = ["BreakerOpen", "BreakerState", "CircuitBreaker", "Permit"]


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerOpen(Exception):
    """Internal: the gateway turns it into StripeUnavailable(breaker_open=True)."""


@dataclass
class Permit:
    probe: bool
    settled: bool = False


class CircuitBreaker:
    """closed -> open after `threshold` consecutive unavailable attempts, or when the failure
    rate over the last `window` attempts reaches `failure_rate` (with `min_calls` of them);
    open -> half-open after `cooldown_s`, letting exactly one probe through; the probe's
    success closes it, its failure opens it for another cooldown.

    Only unavailability counts (connection errors, timeouts, 5xx): a 4xx or a 429 is Stripe
    answering, and rate limits are the budget's business.
    """

    def __init__(
        self,
        *,
        threshold: int,
        failure_rate: float | None,
        window: int,
        min_calls: int,
        cooldown_s: float,
        now: Now,
    ) -> None:
        self._threshold = threshold
        self._failure_rate = failure_rate
        self._min_calls = max(1, min(min_calls, window))
        self._cooldown = cooldown_s
        self._now = now
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._recent: deque[bool] = deque(maxlen=window)  # True: failure
        self._opened_at = 0.0
        self._probe_out = False
        self.opened_count = 0  # for metrics

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._cooled_down() and not self._probe_out:
            return BreakerState.HALF_OPEN
        return self._state

    def acquire(self) -> Permit:
        """A permit for one attempt, or BreakerOpen."""
        if self._state is BreakerState.CLOSED:
            return Permit(probe=False)
        if self._probe_out or not self._cooled_down():
            raise BreakerOpen()
        self._state = BreakerState.HALF_OPEN
        self._probe_out = True
        return Permit(probe=True)

    def check(self, permit: Permit) -> None:
        """Before sending: a permit taken while closed is void once the breaker has opened."""
        if not permit.probe and self._state is not BreakerState.CLOSED:
            permit.settled = True
            raise BreakerOpen()

    def success(self, permit: Permit) -> None:
        if permit.settled:
            return
        permit.settled = True
        if permit.probe:
            self._probe_out = False
            self._close()
        elif self._state is BreakerState.CLOSED:
            self._consecutive = 0
            self._recent.append(False)

    def failure(self, permit: Permit) -> None:
        if permit.settled:
            return
        permit.settled = True
        if permit.probe:
            self._probe_out = False
            self._open()
        elif self._state is BreakerState.CLOSED:
            self._consecutive += 1
            self._recent.append(True)
            if self._consecutive >= self._threshold or self._rate_exceeded():
                self._open()

    def release(self, permit: Permit) -> None:
        """The attempt ended without a verdict (cancelled, or the caller's own bug)."""
        if permit.settled:
            return
        permit.settled = True
        if permit.probe:
            self._probe_out = False  # let the next caller probe

    def _rate_exceeded(self) -> bool:
        if self._failure_rate is None or len(self._recent) < self._min_calls:
            return False
        return sum(self._recent) / len(self._recent) >= self._failure_rate

    def _cooled_down(self) -> bool:
        return self._now() - self._opened_at >= self._cooldown

    def _open(self) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = self._now()
        self.opened_count += 1

    def _close(self) -> None:
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._recent.clear()
