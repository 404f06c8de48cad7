"""Fault injection, switchable at run time through `/_emulator/faults`.

API faults apply to requests whose method and path match (`methods`, `path_prefix`):
- latency_ms + random jitter_ms before the request runs (held locks and idempotency keys
  stay held meanwhile, so concurrent duplicates see 409/429 as on Stripe);
- error_rate: a 500 `api_error` before anything executed (nothing stored against the key);
- reset_before_rate: the connection is dropped before the request took effect;
- reset_after_rate: the request takes effect (and its idempotent result is stored), then the
  connection is dropped: the ambiguous failure a client cannot tell from the one before;
- rate_limit_rate: a 429 storm, answered as `global-rate`.
Webhook faults: duplicate_rate (a delivery sent twice), shuffle (deliveries leave in random
order), delay_ms (each delivery held back), outage (endpoint ids treated as unreachable).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["Faults"]


@dataclass
class Faults:
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_rate: float = 0.0
    reset_before_rate: float = 0.0
    reset_after_rate: float = 0.0
    rate_limit_rate: float = 0.0
    methods: list[str] = field(default_factory=list)  # empty: every method
    path_prefix: str = "/v1/"
    webhook_duplicate_rate: float = 0.0
    webhook_shuffle: bool = False
    webhook_delay_ms: float = 0.0
    webhook_outage: list[str] = field(default_factory=list)  # endpoint ids, or "*"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def update(self, values: dict[str, Any]) -> None:
        names = {f.name: f for f in fields(self)}
        for key, value in values.items():
            if key not in names:
                raise KeyError(key)
            if key in ("methods", "webhook_outage"):
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ValueError(f"{key} must be a list of strings")
                setattr(self, key, [v.upper() for v in value] if key == "methods" else value)
            elif key == "webhook_shuffle":
                setattr(self, key, bool(value))
            elif key == "path_prefix":
                setattr(self, key, str(value))
            else:
                number = float(value)
                if key.endswith("_rate") and not 0.0 <= number <= 1.0:
                    raise ValueError(f"{key} must be between 0 and 1")
                if number < 0:
                    raise ValueError(f"{key} must not be negative")
                setattr(self, key, number)

    def applies(self, method: str, path: str) -> bool:
        if self.methods and method not in self.methods:
            return False
        return path.startswith(self.path_prefix)

    def active(self) -> bool:
        return any(
            (self.latency_ms, self.jitter_ms, self.error_rate, self.reset_before_rate,
             self.reset_after_rate, self.rate_limit_rate)
        )  # fmt: skip

    def latency_s(self, rng: random.Random) -> float:
        return (self.latency_ms + rng.random() * self.jitter_ms) / 1000.0

    def endpoint_down(self, endpoint_id: str) -> bool:
        return "*" in self.webhook_outage or endpoint_id in self.webhook_outage
