from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import stripe
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from payplane.stripe_gateway import GatewayConfig, StripeGateway
from payplane.stripe_gateway.testing import FakeClock, FakeRng

from ._rig import Rig


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.clear()


@pytest.fixture
def make_rig(spans: InMemorySpanExporter) -> Callable[..., Rig]:
    """A gateway on a fake clock and RNG, an unused SDK client, spans kept in memory."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))

    def make(fraction: float = 1.0, **overrides: Any) -> Rig:
        settings: dict[str, Any] = {
            "api_key": "sk_test_unit_0000secret",
            "max_attempts": 6,
            "backoff_base_s": 0.5,
            "backoff_cap_s": 4.0,
            "rate_decrease_hold_s": 0.0,
        }
        settings.update(overrides)
        clock = FakeClock()
        rng = FakeRng(fraction)
        # The SDK client is never used: each test's fn stands in for the HTTP call.
        client = stripe.StripeClient("sk_test_unused", http_client=stripe.AIOHTTPClient())
        gateway = StripeGateway(
            GatewayConfig(**settings),
            client=client,
            now=clock.now,
            sleep=clock.sleep,
            rng=rng,
            tracer_provider=provider,
        )
        return Rig(gateway, clock, rng, spans)

    return make
