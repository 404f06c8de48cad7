"""Helpers shared by the unit tests: scripted attempts and a gateway on fake time."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import stripe
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from payplane.stripe_gateway import StripeGateway
from payplane.stripe_gateway.testing import FakeClock, FakeRng


@dataclass
class Response:
    """Stands in for StripeResponse: what the gateway reads from `result.last_response`."""

    request_id: str
    code: int = 200


@dataclass
class Obj:
    id: str
    last_response: Response | None = None


@dataclass
class Script:
    """An `fn` for gateway.call that plays outcomes in order and records each attempt."""

    outcomes: deque[object]
    options: list[dict[str, Any]] = field(default_factory=list)

    async def __call__(self, client: stripe.StripeClient, options: stripe.RequestOptions) -> Any:
        self.options.append(dict(options))
        outcome = self.outcomes.popleft()
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    @property
    def attempts(self) -> int:
        return len(self.options)

    @property
    def keys(self) -> list[str | None]:
        return [o.get("idempotency_key") for o in self.options]


def script(*outcomes: object) -> Script:
    return Script(deque(outcomes))


@dataclass
class Rig:
    gateway: StripeGateway
    clock: FakeClock
    rng: FakeRng
    spans: InMemorySpanExporter
