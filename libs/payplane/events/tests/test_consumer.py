from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from nats.js import JetStreamContext
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from sqlalchemy import Column, MetaData, String, Table, func, insert, select

from payplane.common.v1.common_pb2 import StripeRef
from payplane.events import (
    Consumer,
    Envelope,
    Inbox,
    MessageMeta,
    Outbox,
    Relay,
    ensure_stream,
    new_envelope,
    publish_envelope,
    unpack_payload,
)
from payplane.events.testing import eventually

if TYPE_CHECKING:
    from .conftest import Db, Tracing


def _envelope(n: int = 1) -> Envelope:
    return new_envelope("payment.succeeded", "checkout", f"pi_{n}", StripeRef(id=f"pi_{n}"))


@contextlib.asynccontextmanager
async def _running(consumer: Consumer) -> Any:
    await consumer.ensure()  # so polling consumer_info never races the creation
    task = asyncio.create_task(consumer.run())
    try:
        yield task
    finally:
        consumer.stop()
        await asyncio.wait_for(task, timeout=10)


async def test_handler_success_acks_once(js: JetStreamContext, uid: str) -> None:
    await ensure_stream(js, f"S{uid}", [f"s{uid}.>"])
    seen: list[tuple[str, MessageMeta]] = []

    async def handler(env: Envelope, meta: MessageMeta) -> None:
        assert unpack_payload(env, StripeRef).id == env.subject_id
        seen.append((env.event_id, meta))

    env = _envelope()
    await publish_envelope(js, f"s{uid}.pay", env)
    consumer = Consumer(js, f"S{uid}", "worker", f"s{uid}.>", handler)
    async with _running(consumer):

        async def acked() -> bool:
            info = await js.consumer_info(f"S{uid}", "worker")
            return bool(info.ack_floor.stream_seq == 1 and info.num_ack_pending == 0)

        await eventually(acked)
    assert [(e, m.num_delivered, m.msg_id) for e, m in seen] == [(env.event_id, 1, env.event_id)]


async def test_failed_handler_is_retried_then_acked(js: JetStreamContext, uid: str) -> None:
    await ensure_stream(js, f"S{uid}", [f"s{uid}.>"])
    deliveries: list[int] = []

    async def flaky(env: Envelope, meta: MessageMeta) -> None:
        deliveries.append(meta.num_delivered)
        if meta.num_delivered == 1:
            raise RuntimeError("database briefly away")

    await publish_envelope(js, f"s{uid}.pay", _envelope())
    consumer = Consumer(js, f"S{uid}", "worker", f"s{uid}.>", flaky, backoff_s=[0.1])
    async with _running(consumer):

        async def done() -> bool:
            info = await js.consumer_info(f"S{uid}", "worker")
            return bool(info.ack_floor.stream_seq == 1 and info.num_ack_pending == 0)

        await eventually(done)
    assert deliveries == [1, 2]


async def test_message_is_redelivered_after_the_consumer_dies_without_ack(
    js: JetStreamContext, uid: str
) -> None:
    await ensure_stream(js, f"S{uid}", [f"s{uid}.>"])
    holding = asyncio.Event()

    async def dies_mid_way(env: Envelope, meta: MessageMeta) -> None:
        holding.set()
        await asyncio.Event().wait()  # never answers

    env = _envelope()
    await publish_envelope(js, f"s{uid}.pay", env)
    # Short ack wait (the first backoff value is JetStream's ack wait for delivery 1).
    first = Consumer(js, f"S{uid}", "worker", f"s{uid}.>", dies_mid_way, backoff_s=[0.5, 0.5])
    task = asyncio.create_task(first.run())
    await asyncio.wait_for(holding.wait(), timeout=10)
    task.cancel()  # the process dies: no ack, no nak
    with contextlib.suppress(asyncio.CancelledError):
        await task

    got: list[MessageMeta] = []

    async def survivor(env2: Envelope, meta: MessageMeta) -> None:
        assert env2.event_id == env.event_id
        got.append(meta)

    second = Consumer(js, f"S{uid}", "worker", f"s{uid}.>", survivor, backoff_s=[0.5, 0.5])
    async with _running(second):

        async def redelivered() -> bool:
            return bool(got)

        await eventually(redelivered)
    assert got[0].num_delivered >= 2


async def test_dead_letter_after_max_deliver(js: JetStreamContext, uid: str) -> None:
    await ensure_stream(js, f"S{uid}", [f"s{uid}.>"])
    attempts: list[int] = []

    async def always_fails(env: Envelope, meta: MessageMeta) -> None:
        attempts.append(meta.num_delivered)
        raise ValueError("card\nrejected")

    env = _envelope()
    await publish_envelope(js, f"s{uid}.pay", env)
    consumer = Consumer(
        js, f"S{uid}", "worker", f"s{uid}.>", always_fails, max_deliver=3, backoff_s=[0.05]
    )
    assert consumer.dead_letter_subject == f"dlq.S{uid}.worker"
    async with _running(consumer):

        async def dead_lettered() -> bool:
            try:
                info = await js.stream_info(f"DLQ_S{uid}")
            except Exception:
                return False
            return info.state.messages == 1

        await eventually(dead_lettered)

        async def settled() -> bool:
            info = await js.consumer_info(f"S{uid}", "worker")
            return bool(info.num_ack_pending == 0 and info.num_redelivered == 0)

        await eventually(settled)

    assert attempts == [1, 2, 3]
    msg = await js.get_last_msg(f"DLQ_S{uid}", f"dlq.S{uid}.worker")
    assert msg.data == env.SerializeToString()
    headers = msg.headers or {}
    assert headers["Payplane-Dlq-Error"] == "ValueError: card rejected"
    assert headers["Payplane-Original-Msg-Id"] == env.event_id
    assert headers["Payplane-Dlq-Deliveries"] == "3"
    assert headers["Payplane-Dlq-Subject"] == f"s{uid}.pay"


async def test_undecodable_message_is_dead_lettered_without_retries(
    js: JetStreamContext, uid: str
) -> None:
    await ensure_stream(js, f"S{uid}", [f"s{uid}.>"])
    called = False

    async def handler(env: Envelope, meta: MessageMeta) -> None:
        nonlocal called
        called = True

    await js.publish(f"s{uid}.junk", b"\xff\xff not a protobuf", headers={"Nats-Msg-Id": "j1"})
    dlq = f"custom.dlq.{uid}"
    consumer = Consumer(js, f"S{uid}", "w", f"s{uid}.>", handler, dead_letter_subject=dlq)
    async with _running(consumer):

        async def dead_lettered() -> bool:
            try:
                return (await js.stream_info(f"DLQ_S{uid}_w")).state.messages == 1
            except Exception:
                return False

        await eventually(dead_lettered)
    msg = await js.get_last_msg(f"DLQ_S{uid}_w", dlq)
    assert (msg.headers or {})["Payplane-Dlq-Deliveries"] == "1"
    assert not called


async def test_inbox_makes_a_redelivered_effect_apply_once(
    db: Db, js: JetStreamContext, uid: str
) -> None:
    """The effect commits, then the ack is lost (handler raises): the redelivery is skipped."""
    await ensure_stream(js, f"S{uid}", [f"s{uid}.>"])
    metadata = MetaData()
    effects = Table("effects", metadata, Column("event_id", String(64)))
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    inbox = Inbox(db.inbox)
    deliveries: list[int] = []

    async def handler(env: Envelope, meta: MessageMeta) -> None:
        deliveries.append(meta.num_delivered)
        async with db.sessions() as session, session.begin():
            if await inbox.claim(session, "ledger", env.event_id):
                await session.execute(insert(effects).values(event_id=env.event_id))
        if meta.num_delivered == 1:
            raise ConnectionError("lost before the ack")

    await publish_envelope(js, f"s{uid}.pay", _envelope())
    # A ConnectionError is retryable (held and retried in place); this test is about the
    # redelivery path, so every failure counts here.
    consumer = Consumer(
        js, f"S{uid}", "ledger", f"s{uid}.>", handler, backoff_s=[0.05],
        retryable=lambda _exc: False,
    )  # fmt: skip
    async with _running(consumer):

        async def acked() -> bool:
            info = await js.consumer_info(f"S{uid}", "ledger")
            return bool(info.ack_floor.stream_seq == 1 and info.num_ack_pending == 0)

        await eventually(acked)
    assert deliveries == [1, 2]
    async with db.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(effects))).scalar_one() == 1


async def test_consumer_span_is_a_child_of_the_producer_span(
    db: Db, js: JetStreamContext, uid: str, tracing: Tracing
) -> None:
    await ensure_stream(js, f"S{uid}", [f"s{uid}.>"])
    tracer = tracing.provider.get_tracer("test-producer")
    with tracer.start_as_current_span("CreatePayment") as producer:
        async with db.sessions() as session, session.begin():
            await Outbox(db.outbox, tracer_provider=tracing.provider).add(
                session, f"s{uid}.pay", _envelope()
            )
    # The relay runs later, outside any span: the context comes from the stored headers.
    assert await Relay(db.sessions, db.outbox, js).run_once() == 1

    inside: list[trace.SpanContext] = []

    async def handler(env: Envelope, meta: MessageMeta) -> None:
        inside.append(trace.get_current_span().get_span_context())

    consumer = Consumer(
        js, f"S{uid}", "ledger", f"s{uid}.>", handler, tracer_provider=tracing.provider
    )
    async with _running(consumer):

        async def handled() -> bool:
            return bool(inside)

        await eventually(handled)

    finished = tracing.exporter.get_finished_spans()
    spans = [s for s in finished if s.kind == SpanKind.CONSUMER]
    (publish,) = [s for s in finished if s.kind == SpanKind.PRODUCER]
    assert len(spans) == 1
    span, pctx = spans[0], producer.get_span_context()
    # CreatePayment -> the outbox's PRODUCER span -> (relay, NATS) -> the CONSUMER span
    assert publish.parent is not None and publish.parent.span_id == pctx.span_id
    assert span.parent is not None
    assert span.parent.span_id == publish.context.span_id
    assert span.context.trace_id == pctx.trace_id
    assert inside[0].span_id == span.context.span_id  # the handler ran inside it


async def test_a_direct_publish_is_a_producer_span_the_consumer_span_is_a_child_of(
    js: JetStreamContext, uid: str, tracing: Tracing
) -> None:
    """Without the outbox (the webhook ingress publishes straight to JetStream) the hop is
    shaped the same: the caller's span -> a PRODUCER span -> the CONSUMER span."""
    await ensure_stream(js, f"S{uid}", [f"s{uid}.>"])
    tracer = tracing.provider.get_tracer("test-ingress")
    with tracer.start_as_current_span("POST /webhooks/stripe", kind=SpanKind.SERVER) as ingress:
        await publish_envelope(js, f"s{uid}.evt", _envelope(), tracer_provider=tracing.provider)
    handled: list[str] = []

    async def handler(env: Envelope, meta: MessageMeta) -> None:
        handled.append(env.event_id)

    consumer = Consumer(
        js, f"S{uid}", "worker", f"s{uid}.>", handler, tracer_provider=tracing.provider
    )
    async with _running(consumer):

        async def done() -> bool:
            return bool(handled)

        await eventually(done)
    finished = tracing.exporter.get_finished_spans()
    (publish,) = [s for s in finished if s.kind == SpanKind.PRODUCER]
    (consumed,) = [s for s in finished if s.kind == SpanKind.CONSUMER]
    assert publish.name == f"s{uid}.evt publish"
    assert publish.attributes is not None
    assert publish.attributes["messaging.message.id"] == handled[0]
    assert publish.parent is not None
    assert publish.parent.span_id == ingress.get_span_context().span_id
    assert consumed.parent is not None and consumed.parent.span_id == publish.context.span_id
    assert consumed.context.trace_id == ingress.get_span_context().trace_id


async def test_forwarded_headers_are_sent_as_they_are(
    js: JetStreamContext, uid: str, tracing: Tracing
) -> None:
    """The relay and replays forward a stored context: no span of their own in between."""
    await ensure_stream(js, f"S{uid}", [f"s{uid}.>"])
    stored = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    await publish_envelope(
        js, f"s{uid}.evt", _envelope(), headers=stored, tracer_provider=tracing.provider
    )
    got: list[MessageMeta] = []

    async def handler(env: Envelope, meta: MessageMeta) -> None:
        got.append(meta)

    consumer = Consumer(js, f"S{uid}", "worker", f"s{uid}.>", handler)
    async with _running(consumer):

        async def done() -> bool:
            return bool(got)

        await eventually(done)
    assert got[0].headers["traceparent"] == stored["traceparent"]
    assert [s for s in tracing.exporter.get_finished_spans() if s.kind == SpanKind.PRODUCER] == []
