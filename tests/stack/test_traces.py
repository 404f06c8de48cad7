"""Traces, proven against a real OTLP/gRPC receiver: the stack as processes (`python -m stack`)
exports to an `OtlpCollector` through OTEL_EXPORTER_OTLP_ENDPOINT, as it would to Jaeger.

One payment is one trace: the caller's span, checkout's server span, the Stripe call, the
outbox's producer span, the NATS hop (W3C context in the message headers), the ledger's
consumer span and its posting, each span carrying its process's service.name. A Stripe
webhook starts a trace of its own that crosses NATS twice (the webhook stream inside
checkout, then checkout's event to the ledger) down to the ledger's posting.

The services' batch exporters are told to wait far longer than the test runs
(OTEL_BSP_SCHEDULE_DELAY), so every service span arrives through the flush at stop.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from payplane.checkout.v1 import checkout_pb2, checkout_pb2_grpc
from payplane.common.v1 import common_pb2
from payplane.grpckit import channel, idempotency_metadata
from payplane.ledger.v1 import ledger_pb2, ledger_pb2_grpc
from payplane.tracing.testing import CollectedSpan, CollectedTrace, OtlpCollector
from stack.config import DEV_CALLERS
from stack.launch import launched_stack_async

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="runs the stack's processes"
)

CREATE = "payplane.checkout.v1.CheckoutService/CreatePayment"
CALLER = "storefront-e2e"
# What a developer's shell may hold: one name for every process would merge them all into
# one service in Jaeger; each process must still be named for itself.
SHELL_ENV = {
    "OTEL_SERVICE_NAME": "left-in-the-shell",
    "OTEL_RESOURCE_ATTRIBUTES": "service.name=also-left,deployment.environment=laptop",
}


def exporting_to(collector: OtlpCollector) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        # Nothing leaves a service on the batch timer while the test runs: what arrives,
        # arrives through the flush at stop.
        "OTEL_BSP_SCHEDULE_DELAY": "3600000",
    }


async def until(what: str, probe: Callable[[], Awaitable[bool]], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not await probe():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s}s"
        await asyncio.sleep(0.2)


def only(trace: CollectedTrace, name: str, kind: str, service: str) -> CollectedSpan:
    span = trace.one(name, kind=kind)
    assert span.service_name == service, f"{span} should come from {service}"
    return span


def parent(trace: CollectedTrace, span: CollectedSpan) -> CollectedSpan:
    found = trace.parent(span)
    assert found is not None, f"the parent of {span} did not arrive:\n{trace.describe()}"
    return found


async def test_one_trace_from_create_payment_to_the_ledger_posting_and_a_webhook_trace(
    tmp_path: Path,
) -> None:
    async with OtlpCollector() as collector:
        # The caller (a storefront) traces too, exporting to the same receiver.
        caller = TracerProvider(resource=Resource.create({"service.name": CALLER}))
        caller.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=collector.endpoint, insecure=True))
        )
        try:
            env = {**exporting_to(collector), **SHELL_ENV}
            async with launched_stack_async(tmp_path / "run", env) as state:
                pay_trace, paid = await _pay(state, caller)
                await _pay_disputed(state)
                await _booked(state, paid.id)
            await asyncio.to_thread(caller.force_flush)
        finally:
            await asyncio.to_thread(caller.shutdown)

        trace = await collector.wait_for_trace(
            pay_trace, lambda t: bool(t.named("ledger.post")), timeout_s=30
        )
        _assert_payment_trace(trace)
        _assert_webhook_trace(collector)


async def _pay(state: dict[str, Any], caller: TracerProvider) -> tuple[str, checkout_pb2.Payment]:
    ch = channel(
        state["services"]["checkout"]["grpc"], DEV_CALLERS["storefront"], tracer_provider=caller
    )
    try:
        with caller.get_tracer("storefront").start_as_current_span("place order") as order:
            paid = await checkout_pb2_grpc.CheckoutServiceStub(ch).CreatePayment(
                checkout_pb2.CreatePaymentRequest(
                    amount=common_pb2.Money(amount_minor=3_100, currency="usd"),
                    customer_ref="cust-trace",
                    payment_method="pm_card_visa",
                ),
                metadata=idempotency_metadata("trace-pay-1"),
                timeout=30,
            )
        assert paid.status == checkout_pb2.PAYMENT_STATUS_SUCCEEDED
        return format(order.get_span_context().trace_id, "032x"), paid
    finally:
        await ch.close(grace=None)


async def _pay_disputed(state: dict[str, Any]) -> None:
    """A payment Stripe disputes at once: the dispute reaches checkout as webhooks."""
    ch = channel(state["services"]["checkout"]["grpc"], DEV_CALLERS["storefront"], tracing=False)
    ledger_ch = channel(state["services"]["ledger"]["grpc"], DEV_CALLERS["finance"], tracing=False)
    try:
        await checkout_pb2_grpc.CheckoutServiceStub(ch).CreatePayment(
            checkout_pb2.CreatePaymentRequest(
                amount=common_pb2.Money(amount_minor=7_000, currency="usd"),
                customer_ref="cust-trace-dispute",
                payment_method="pm_card_createDispute",
            ),
            metadata=idempotency_metadata("trace-dispute-1"),
            timeout=30,
        )
        ledger = ledger_pb2_grpc.LedgerServiceStub(ledger_ch)

        async def withdrawn() -> bool:
            reply = await ledger.GetBalance(
                ledger_pb2.GetBalanceRequest(account="dispute_losses", currency="usd"), timeout=10
            )
            return bool(reply.balance.amount_minor != 0)

        await until("the ledger books the disputed funds", withdrawn)
    finally:
        await ch.close(grace=None)
        await ledger_ch.close(grace=None)


async def _booked(state: dict[str, Any], payment_id: str) -> None:
    ch = channel(state["services"]["ledger"]["grpc"], DEV_CALLERS["finance"], tracing=False)
    ledger = ledger_pb2_grpc.LedgerServiceStub(ch)

    async def booked() -> bool:
        reply = await ledger.ListEntries(
            ledger_pb2.ListEntriesRequest(source_id=payment_id), timeout=10
        )
        return bool(reply.entries)

    try:
        await until(f"the ledger books {payment_id}", booked)
    finally:
        await ch.close(grace=None)


def _assert_payment_trace(trace: CollectedTrace) -> None:
    order = only(trace, "place order", "INTERNAL", CALLER)
    client = only(trace, CREATE, "CLIENT", CALLER)
    server = only(trace, CREATE, "SERVER", "checkout")
    stripe = only(trace, "stripe payment_intents.create", "CLIENT", "checkout")
    producer = only(trace, "checkout.payment.succeeded publish", "PRODUCER", "checkout")
    consumer = only(trace, "checkout.payment.succeeded process", "CONSUMER", "ledger")
    post = only(trace, "ledger.post", "INTERNAL", "ledger")

    assert trace.roots() == [order], trace.describe()
    assert parent(trace, client) == order
    assert parent(trace, server) == client  # the caller's context crossed gRPC metadata
    assert server in trace.ancestors(stripe)
    assert server in trace.ancestors(producer)
    assert parent(trace, consumer) == producer  # ... and NATS headers, through the outbox
    assert parent(trace, post) == consumer
    assert consumer.attributes["messaging.system"] == "nats"
    assert stripe.attributes["stripe.request_id"]
    assert {s.service_name for s in trace} == {CALLER, "checkout", "ledger"}
    # The rest of the shell's resource attributes still reach every service's spans.
    assert {s.resource.get("deployment.environment") for s in (server, consumer)} == {"laptop"}


def _assert_webhook_trace(collector: OtlpCollector) -> None:
    """The dispute's funds leave through Stripe's webhook: its trace starts at checkout's
    webhook route and ends at the ledger's posting."""
    name = "checkout.dispute.funds_withdrawn process"
    consumers = [s for s in collector.spans() if s.name == name and s.service_name == "ledger"]
    assert len(consumers) == 1, [str(s) for s in collector.spans()]
    trace = collector.trace(consumers[0].trace_id)
    consumer = consumers[0]
    producer = parent(trace, consumer)
    assert (producer.name, producer.kind, producer.service_name) == (
        "checkout.dispute.funds_withdrawn publish",
        "PRODUCER",
        "checkout",
    )
    post = next(s for s in trace.named("ledger.post") if parent(trace, s) == consumer)
    assert post.service_name == "ledger"
    chain = trace.ancestors(producer)
    assert chain, trace.describe()
    root = chain[-1]
    assert (root.name, root.kind, root.service_name) == (
        "POST /webhooks/stripe",
        "SERVER",
        "checkout",
    ), trace.describe()
    # The first NATS hop, inside checkout: the webhook's event onto its Stripe stream.
    (stripe_consumer,) = [s for s in chain if s.kind == "CONSUMER"]
    assert stripe_consumer.service_name == "checkout"
    assert stripe_consumer.name.startswith("stripe.checkout.charge.dispute."), trace.describe()
    stripe_producer = parent(trace, stripe_consumer)
    assert (stripe_producer.name, stripe_producer.kind, stripe_producer.service_name) == (
        stripe_consumer.name.replace(" process", " publish"),
        "PRODUCER",
        "checkout",
    ), trace.describe()
    assert parent(trace, stripe_producer) == root
