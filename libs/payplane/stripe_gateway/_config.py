from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = ["GatewayConfig", "Lane"]


class Lane(enum.IntEnum):
    """Priority lanes of the rate budget: a lower value is served first when tokens are scarce."""

    INTERACTIVE = 0  # a customer is waiting (checkout)
    COLLECTION = 1  # money back and money due: refunds, invoice collection
    PAYOUTS = 2  # transfers and payouts to connected accounts
    BACKGROUND = 3  # sync, backfill, reconciliation, usage reporting
    REFUNDS = 1  # the name COLLECTION had first (an alias: the same lane)


@dataclass(frozen=True)
class GatewayConfig:
    """One service's Stripe gateway. Defaults follow Stripe's test-mode limits and advice.

    The API key is kept out of `repr` so a logged config never leaks it.
    """

    api_key: str = field(repr=False)
    base_url: str | None = None  # None: api.stripe.com
    stripe_account: str | None = None  # Connect: act as this account on every call
    service_name: str = "payplane"
    # Rate budget: this service's share of the account's limit, and the adaptive cap.
    max_requests_per_s: float = 25.0
    min_requests_per_s: float = 1.0  # floor of the adaptive cap
    rate_decrease_factor: float = 0.5  # multiplicative decrease on a 429 rate_limit
    rate_increase_per_success: float = 0.5  # additive recovery, requests/s per success
    # One overload usually answers a whole burst with 429s; count it once, not once per request.
    rate_decrease_hold_s: float = 1.0
    # Attempts and backoff (full jitter: uniform(0, min(cap, base * 2**n))).
    timeout_s: float = 30.0
    max_attempts: int = 6
    backoff_base_s: float = 0.25
    backoff_cap_s: float = 5.0
    # Circuit breaker, over attempts that found Stripe unreachable (connection errors, 5xx).
    breaker_failure_threshold: int = 5  # consecutive
    breaker_failure_rate: float | None = 0.5  # over the window; None: consecutive only
    breaker_window: int = 20  # most recent attempts considered for the rate
    breaker_min_calls: int = 10  # the rate needs this many attempts in the window
    breaker_cooldown_s: float = 10.0  # open -> one probe (half-open)

    def __post_init__(self) -> None:
        problems = []
        if not self.api_key:
            problems.append("api_key is empty")
        if self.max_requests_per_s <= 0:
            problems.append("max_requests_per_s must be > 0")
        if not 0 < self.min_requests_per_s <= self.max_requests_per_s:
            problems.append("min_requests_per_s must be in (0, max_requests_per_s]")
        if not 0 < self.rate_decrease_factor < 1:
            problems.append("rate_decrease_factor must be in (0, 1)")
        if self.rate_increase_per_success < 0 or self.rate_decrease_hold_s < 0:
            problems.append("rate_increase_per_success and rate_decrease_hold_s must be >= 0")
        if self.timeout_s <= 0:
            problems.append("timeout_s must be > 0")
        if self.max_attempts < 1:
            problems.append("max_attempts must be >= 1")
        if self.backoff_base_s < 0 or self.backoff_cap_s < 0:
            problems.append("backoff_base_s and backoff_cap_s must be >= 0")
        if self.breaker_failure_threshold < 1 or self.breaker_window < 1:
            problems.append("breaker_failure_threshold and breaker_window must be >= 1")
        if self.breaker_failure_rate is not None and not 0 < self.breaker_failure_rate <= 1:
            problems.append("breaker_failure_rate must be in (0, 1]")
        if self.breaker_cooldown_s < 0:
            problems.append("breaker_cooldown_s must be >= 0")
        if problems:
            raise ValueError("invalid GatewayConfig: " + "; ".join(problems))
