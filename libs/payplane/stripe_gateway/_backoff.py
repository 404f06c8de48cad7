from __future__ import annotations

from ._clock import Rng

__all__ = ["full_jitter"]


def full_jitter(retry: int, base_s: float, cap_s: float, rng: Rng) -> float:
    """Seconds to wait before retry number `retry` (0 for the first retry).

    Full jitter (AWS architecture blog, "Exponential Backoff And Jitter"): uniform over
    [0, min(cap, base * 2**retry)], so a burst of failing clients spreads out instead of
    retrying in lockstep.
    """
    ceiling = min(cap_s, base_s * 2.0 ** min(retry, 62))
    return rng.uniform(0.0, ceiling)
