"""Per-account token buckets: a global bucket and one per endpoint, plus a concurrency cap.

Buckets run on real (monotonic) time: rate limits protect the server, whatever the
emulator's clock says.
"""

from __future__ import annotations

import time

__all__ = ["RateLimiter"]


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, capacity: float) -> None:
        self.tokens = capacity
        self.stamp = time.monotonic()

    def take(self, rate: float) -> bool:
        now = time.monotonic()
        self.tokens = min(rate, self.tokens + (now - self.stamp) * rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class RateLimiter:
    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self.in_flight: dict[str, int] = {}

    def clear(self) -> None:
        self._buckets.clear()

    def check(
        self,
        account: str,
        endpoint: str,
        global_rate: float | None,
        endpoint_rate: float | None,
        max_concurrent: int | None,
    ) -> str | None:
        """Return None when the request may run, else the Stripe-Rate-Limited-Reason."""
        if max_concurrent is not None and self.in_flight.get(account, 0) >= max_concurrent:
            return "global-concurrency"
        if global_rate is not None and not self._take((account, ""), global_rate):
            return "global-rate"
        if endpoint_rate is not None and not self._take((account, endpoint), endpoint_rate):
            return "endpoint-rate"
        return None

    def _take(self, key: tuple[str, str], rate: float) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(max(rate, 1.0))
        return bucket.take(max(rate, 1.0))
