"""The gateway over HTTP against the Stripe emulator, with the official SDK (aiohttp)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import stripe
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from payplane.stripe_gateway import (
    BreakerState,
    CardDeclined,
    GatewayConfig,
    Lane,
    NotFound,
    StripeGateway,
    StripeUnavailable,
    deterministic_key,
)
from stripe_emulator.config import Config
from stripe_emulator.testing import TEST_KEY, EmulatorHandle, running_emulator

MakeGateway = Callable[..., StripeGateway]


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorHandle]:
    with running_emulator(Config(global_rate=None, endpoint_rate=None, seed=20240611)) as emu:
        yield emu


@pytest.fixture
def emu(emulator: EmulatorHandle) -> Iterator[EmulatorHandle]:
    emulator.control.reset()
    emulator.control.clear_requests()
    emulator.control.configure(global_rate=None, endpoint_rate=None, max_concurrent=None)
    yield emulator
    emulator.control.clear_faults()
    emulator.control.configure(global_rate=None, endpoint_rate=None)


@pytest.fixture
async def make_gateway(emu: EmulatorHandle) -> AsyncIterator[MakeGateway]:
    made: list[StripeGateway] = []

    def make(
        *,
        tracer_provider: TracerProvider | None = None,
        now: Callable[[], float] | None = None,
        **overrides: Any,
    ) -> StripeGateway:
        settings: dict[str, Any] = {
            "api_key": TEST_KEY,
            "base_url": emu.url,
            "service_name": "test",
            "backoff_base_s": 0.01,  # small, so the suite stays fast
            "backoff_cap_s": 0.05,
            "timeout_s": 10.0,
        }
        settings.update(overrides)
        gateway = StripeGateway(GatewayConfig(**settings), now=now, tracer_provider=tracer_provider)
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        await gateway.aclose()


async def create_customer(gw: StripeGateway, key: str | None, **params: Any) -> stripe.Customer:
    return await gw.call(
        "customers.create",
        lambda c, o: c.v1.customers.create_async(params=params, options=o),
        idempotency_key=key,
    )


def breaker_state(gw: StripeGateway) -> BreakerState:
    return gw.breaker_state  # a call, so mypy does not narrow the property across steps


def customer_count(emu: EmulatorHandle) -> int:
    return len(emu.stripe_client().v1.customers.list(params={"limit": 100}).data)


async def test_faulty_creates_end_in_exactly_one_object_per_key(
    emu: EmulatorHandle, make_gateway: MakeGateway
) -> None:
    # Breaker off: this test is about retries; 44 % of attempts fail on purpose.
    gw = make_gateway(max_attempts=15, breaker_failure_threshold=1000, breaker_failure_rate=None)
    emu.control.faults(error_rate=0.3, reset_after_rate=0.2, methods=["POST"])
    keys = [deterministic_key("integration", "flaky", str(i)) for i in range(30)]
    created = await asyncio.gather(*(create_customer(gw, k, email=f"{i}@x.test")
                                     for i, k in enumerate(keys)))  # fmt: skip
    emu.control.clear_faults()

    log = emu.control.requests(method="POST", path="/v1/customers")
    assert any(e.get("reset") for e in log) and any(e["status"] == 500 for e in log), (
        "the faults must have fired, or this test proves nothing"
    )
    assert len({c.id for c in created}) == 30
    assert customer_count(emu) == 30, "one customer per key, however many attempts it took"
    for key in keys:
        entries = emu.control.requests(idempotency_key=key)
        executed = [
            e for e in entries if not e["replayed"] and (e["status"] == 200 or e.get("reset"))
        ]
        assert len(executed) == 1, f"{key}: executed {len(executed)} times"
        assert all(e["idempotency_key"] == key for e in entries)


async def test_a_burst_beyond_the_rate_limit_is_absorbed(
    emu: EmulatorHandle, make_gateway: MakeGateway
) -> None:
    emu.control.configure(global_rate=10, endpoint_rate=None)
    gw = make_gateway(
        max_requests_per_s=25, max_attempts=10, backoff_cap_s=0.2, rate_decrease_hold_s=0.2
    )
    keys = [f"burst-{i}" for i in range(40)]
    created = await asyncio.gather(*(create_customer(gw, k) for k in keys))
    emu.control.configure(global_rate=None)

    assert len({c.id for c in created}) == 40 and customer_count(emu) == 40
    limited = emu.control.requests(status=429)
    assert limited, "the burst must have hit the emulator's limit"
    assert all(e["error"] == "rate_limit" for e in limited)
    assert gw.effective_rate < 25, "the adaptive cap backed off"


async def test_the_breaker_opens_and_fails_fast_without_requests(
    emu: EmulatorHandle, make_gateway: MakeGateway
) -> None:
    offset = [0.0]  # real time plus what the test skips, so the cooldown needs no waiting
    gw = make_gateway(
        max_attempts=6, breaker_failure_threshold=3, breaker_failure_rate=None,
        breaker_cooldown_s=30.0, now=lambda: time.monotonic() + offset[0],
    )  # fmt: skip
    emu.control.faults(error_rate=1.0, methods=["POST"])

    with pytest.raises(StripeUnavailable) as first:
        await create_customer(gw, "down-1")
    assert first.value.breaker_open and first.value.ambiguous
    assert len(emu.control.requests(idempotency_key="down-1")) == 3
    assert breaker_state(gw) is BreakerState.OPEN

    before = len(emu.control.requests())
    for i in range(5):
        with pytest.raises(StripeUnavailable) as fast:
            await create_customer(gw, f"down-fast-{i}")
        assert fast.value.breaker_open and not fast.value.ambiguous and fast.value.attempts == 0
    assert len(emu.control.requests()) == before, "nothing reached Stripe while open"

    emu.control.clear_faults()
    offset[0] += 30.0
    recovered = await create_customer(gw, "after-cooldown")
    assert recovered.id.startswith("cus_")
    assert breaker_state(gw) is BreakerState.CLOSED
    assert len(emu.control.requests()) == before + 1, "exactly one probe"


def _payment_intents_available(emu: EmulatorHandle) -> bool:
    try:
        emu.stripe_client().v1.payment_intents.list(params={"limit": 1})
    except stripe.InvalidRequestError as exc:
        if exc.http_status == 404:
            return False
        raise
    return True


async def create_intent(gw: StripeGateway, key: str, pm: str) -> stripe.PaymentIntent:
    params = {"amount": 1000, "currency": "usd", "payment_method": pm, "confirm": True}
    return await gw.call(
        "payment_intents.create",
        lambda c, o: c.v1.payment_intents.create_async(params=params, options=o),
        idempotency_key=key,
    )


@pytest.mark.parametrize(
    ("pm", "decline_code", "advice"),
    [
        ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds", "dunning"),
        ("pm_card_visa_chargeDeclinedLostCard", "lost_card", "never"),
        ("pm_card_chargeDeclined", "generic_decline", "customer_action"),
        ("pm_card_chargeDeclinedProcessingError", "processing_error", "retry_later"),
    ],
)
async def test_a_declined_card_maps_to_card_declined_with_advice(
    emu: EmulatorHandle, make_gateway: MakeGateway, pm: str, decline_code: str, advice: str
) -> None:
    if not _payment_intents_available(emu):
        pytest.skip("the emulator has no PaymentIntents resource (/v1/payment_intents) yet")
    gw = make_gateway()
    with pytest.raises(CardDeclined) as caught:
        await create_intent(gw, f"decline-{pm}", pm)
    err = caught.value
    assert err.http_status == 402 and err.attempts == 1
    assert (err.decline_code, err.advice) == (decline_code, advice)
    assert err.payment_intent_id and err.payment_intent_id.startswith("pi_")
    assert err.charge_id and err.charge_id.startswith("ch_")
    assert err.request_id and err.request_id.startswith("req_")
    assert len(emu.control.requests(idempotency_key=f"decline-{pm}")) == 1, "not retried"


async def test_a_good_card_succeeds(emu: EmulatorHandle, make_gateway: MakeGateway) -> None:
    if not _payment_intents_available(emu):
        pytest.skip("the emulator has no PaymentIntents resource (/v1/payment_intents) yet")
    intent = await create_intent(make_gateway(), "good-card", "pm_card_visa")
    assert intent.status == "succeeded" and intent.amount == 1000


async def test_each_call_is_a_client_span_with_the_stripe_request_id(
    emu: EmulatorHandle, make_gateway: MakeGateway
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    gw = make_gateway(tracer_provider=provider)
    customer = await create_customer(gw, "traced-1", email="t@x.test")
    with pytest.raises(NotFound):
        await gw.call(
            "customers.retrieve",
            lambda c, o: c.v1.customers.retrieve_async("cus_missing", options=o),
            idempotency_key=None,
            lane=Lane.BACKGROUND,
        )

    created_span, missing_span = exporter.get_finished_spans()
    logged = emu.control.requests(idempotency_key="traced-1")[-1]
    assert created_span.name == "stripe customers.create" and created_span.kind is SpanKind.CLIENT
    attrs = dict(created_span.attributes or {})
    assert attrs["stripe.request_id"] == logged["request_id"]
    assert attrs["stripe.idempotency_key"] == "traced-1" and attrs["http.status_code"] == 200
    assert attrs["stripe.attempts"] == 1 and attrs["stripe.lane"] == "interactive"
    assert customer.id.startswith("cus_")

    missing = dict(missing_span.attributes or {})
    assert missing_span.name == "stripe customers.retrieve"
    assert missing_span.status.status_code is StatusCode.ERROR
    assert missing["http.status_code"] == 404 and str(missing["stripe.request_id"]).startswith(
        "req_"
    )
    assert missing["stripe.lane"] == "background"
