"""One distributed trace from CreatePayment to the ledger posting."""

from __future__ import annotations

from opentelemetry.sdk.trace import ReadableSpan

from payplane.tracing.testing import InMemorySpans

from .harness import Platform, eventually


def _by_name(spans: list[ReadableSpan], prefix: str) -> ReadableSpan:
    found = [s for s in spans if s.name.startswith(prefix)]
    assert found, f"no span named {prefix}...; have {sorted({s.name for s in spans})}"
    return found[0]


async def test_one_trace_links_rpc_stripe_nats_and_ledger(platform: Platform) -> None:
    spans = InMemorySpans()
    await platform.pay("k-trace", amount=3_000)

    async def posted() -> list[ReadableSpan]:
        return spans.named("ledger.post")

    await eventually(posted, lambda found: len(found) == 1)
    all_spans = spans.spans()
    rpc = _by_name(all_spans, "payplane.checkout.v1.CheckoutService/CreatePayment")
    stripe_call = _by_name(all_spans, "stripe payment_intents.create")
    producer = _by_name(all_spans, "checkout.payment.succeeded publish")
    consumer = _by_name(all_spans, "checkout.payment.succeeded process")
    post = _by_name(all_spans, "ledger.post")
    trace_id = rpc.context.trace_id
    for span in (stripe_call, producer, consumer, post):
        assert span.context.trace_id == trace_id, span.name
    by_id = {s.context.span_id: s for s in all_spans}

    def parent_of(span: ReadableSpan) -> ReadableSpan:
        assert span.parent is not None, f"{span.name} has no parent"
        return by_id[span.parent.span_id]

    assert parent_of(stripe_call) is rpc or parent_of(parent_of(stripe_call)) is rpc
    assert parent_of(consumer) is producer
    assert parent_of(post) is consumer
