"""A token bucket with priority lanes and an AIMD-adapted rate."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque

from ._clock import Now, Sleep
from ._config import Lane

__all__ = ["RateBudget"]

# Float time: t + 1/rate - t can come out a hair under 1/rate. Without slack, a bucket one
# ulp short of a token would re-sleep for a time too small to move the clock, forever.
_EPS = 1e-9
_MIN_WAIT_S = 0.001


class RateBudget:
    """Every attempt to reach Stripe takes one token; tokens refill at `effective_rate`.

    Capacity is one second's worth of tokens (Stripe counts per second). Waiting callers are
    served strictly by lane, then in arrival order, so a backlog of background work never
    delays an interactive call by more than one token's refill. A 429 rate_limit halves the
    rate (at most once per `decrease_hold_s`) and empties the bucket; each success adds
    `increase_per_success` back, up to the configured rate (AIMD, as in TCP).
    """

    def __init__(
        self,
        *,
        rate: float,
        floor: float,
        decrease_factor: float,
        increase_per_success: float,
        decrease_hold_s: float,
        now: Now,
        sleep: Sleep,
    ) -> None:
        self._max = rate
        self._rate = rate
        self._floor = min(floor, rate)
        self._factor = decrease_factor
        self._increase = increase_per_success
        self._hold = decrease_hold_s
        self._now = now
        self._sleep = sleep
        self._tokens = self.capacity
        self._stamp = now()
        self._last_decrease: float | None = None
        self._waiters: dict[Lane, deque[asyncio.Future[None]]] = {lane: deque() for lane in Lane}
        self._dispatcher: asyncio.Task[None] | None = None
        # Demand per lane: an exponentially decaying count of acquisitions (see demand()).
        self._arrivals: dict[Lane, float] = dict.fromkeys(Lane, 0.0)
        self._arrivals_stamp = now()

    @property
    def effective_rate(self) -> float:
        """Requests per second currently allowed (the adaptive cap), for metrics."""
        return self._rate

    @property
    def capacity(self) -> float:
        return max(1.0, self._rate)

    @property
    def tokens(self) -> float:
        self._refill()
        return self._tokens

    @property
    def limit(self) -> float:
        """The rate this budget may never exceed (its share of the account's limit)."""
        return self._max

    def waiting(self) -> dict[Lane, int]:
        return {lane: sum(not f.done() for f in q) for lane, q in self._waiters.items()}

    def set_limit(self, rate: float) -> None:
        """Move the cap (an account-wide share changed). A budget running at its old cap
        follows the new one at once; one backed off after a 429 keeps its lowered rate (and
        recovers additively) when the new cap is above it. Banked tokens beyond one second of
        the new rate are dropped, so a shrinking share cannot burst at its old size."""
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self._refill()
        at_cap = self._rate >= self._max
        self._max = rate
        self._floor = min(self._floor, rate)
        self._rate = rate if at_cap else min(self._rate, rate)
        self._tokens = min(self._tokens, self.capacity)

    def demand(self, horizon_s: float = 1.0, drain_s: float = 0.25) -> dict[Lane, float]:
        """Requests/s wanted per lane: the recent arrival rate (decaying over `horizon_s`)
        plus what is queued now, to be drained within `drain_s`. Callers that wait for
        tokens arrive no faster than they are served, so the queue is what says a lane
        wants more than it gets."""
        self._decay(horizon_s)
        queued = self.waiting()
        return {lane: self._arrivals[lane] / horizon_s + queued[lane] / drain_s for lane in Lane}

    def _decay(self, horizon_s: float) -> None:
        now = self._now()
        elapsed = max(0.0, now - self._arrivals_stamp)
        self._arrivals_stamp = now
        if elapsed:
            keep = math.exp(-elapsed / horizon_s)
            for lane in Lane:
                self._arrivals[lane] *= keep

    async def acquire(self, lane: Lane) -> None:
        self._arrivals[lane] += 1.0
        self._refill()
        ahead = any(
            not f.done() for q_lane, q in self._waiters.items() if q_lane <= lane for f in q
        )
        if not ahead and self._tokens >= 1.0 - _EPS:
            self._tokens -= 1.0
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[lane].append(future)
        self._ensure_dispatcher()
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._tokens += 1.0  # granted as we were cancelled: hand the token back
            else:
                future.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters[lane].remove(future)
            raise

    def close(self) -> None:
        """Stop the dispatcher; callers still waiting are cancelled."""
        if self._dispatcher is not None:
            self._dispatcher.cancel()
        for queue in self._waiters.values():
            while queue:
                queue.popleft().cancel()

    def on_success(self) -> None:
        self._refill()
        self._rate = min(self._max, self._rate + self._increase)

    def on_rate_limited(self) -> bool:
        """Back off after a 429 rate_limit. Returns whether the rate was lowered."""
        self._refill()
        self._tokens = min(self._tokens, 0.0)  # Stripe says we are over: stop the burst now
        now = self._now()
        if self._last_decrease is not None and now - self._last_decrease < self._hold:
            return False
        self._last_decrease = now
        self._rate = max(self._floor, self._rate * self._factor)
        return True

    def _refill(self) -> None:
        now = self._now()
        elapsed = max(0.0, now - self._stamp)
        self._stamp = now
        self._tokens = min(self.capacity, self._tokens + elapsed * self._rate)

    def _next_waiter(self) -> asyncio.Future[None] | None:
        for lane in Lane:
            queue = self._waiters[lane]
            while queue:
                future = queue.popleft()
                if not future.done():
                    return future
        return None

    def _grant(self) -> None:
        while self._tokens >= 1.0 - _EPS:
            future = self._next_waiter()
            if future is None:
                return
            self._tokens -= 1.0
            future.set_result(None)

    def _has_waiters(self) -> bool:
        return any(not f.done() for q in self._waiters.values() for f in q)

    def _ensure_dispatcher(self) -> None:
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch())

    async def _dispatch(self) -> None:
        while True:
            self._refill()
            self._grant()
            if not self._has_waiters():
                return
            await self._sleep(max(_MIN_WAIT_S, (1.0 - self._tokens) / self._rate))
