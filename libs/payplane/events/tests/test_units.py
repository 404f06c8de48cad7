"""Envelope helpers, fakes and stream setup."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from nats.js import JetStreamContext
from nats.js.api import AckPolicy

from payplane.common.v1.common_pb2 import Money, StripeRef
from payplane.events import (
    Consumer,
    EnvelopeError,
    MessageMeta,
    PublishError,
    ensure_stream,
    new_envelope,
    unpack_payload,
)
from payplane.events.testing import FakeOutbox, FakePublisher, deliver
from payplane.events.v1.envelope_pb2 import Envelope


def test_new_envelope_round_trips_its_payload() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    env = new_envelope("payment.succeeded", "checkout", "pi_1", StripeRef(id="pi_1"), time=when)
    assert env.event_id and env.payload_type == "payplane.common.v1.StripeRef"
    assert env.time.ToDatetime(tzinfo=UTC) == when
    decoded = Envelope.FromString(env.SerializeToString())
    assert unpack_payload(decoded, StripeRef).id == "pi_1"
    with pytest.raises(EnvelopeError):
        unpack_payload(decoded, Money)


async def test_fake_publisher_drops_duplicates_and_can_fail() -> None:
    pub = FakePublisher()
    env = new_envelope("a.b", "svc", "x", StripeRef(id="x"))
    assert await pub.publish_envelope("a.b", env)
    assert not await pub.publish_envelope("a.b", env)
    assert pub.of_type("a.b") == [env]
    pub.fail_with = PublishError("down")
    with pytest.raises(PublishError):
        await pub.publish_envelope("a.b", new_envelope("a.b", "svc", "y", StripeRef()))


async def test_fake_outbox_and_deliver() -> None:
    outbox = FakeOutbox()
    env = new_envelope("a.b", "svc", "x", StripeRef(id="x"))
    await outbox.add(None, "subj", env)
    assert outbox.envelopes == [env]
    with pytest.raises(ValueError):
        await outbox.add(None, "subj", Envelope())

    seen: list[MessageMeta] = []

    async def handler(e: Envelope, meta: MessageMeta) -> None:
        seen.append(meta)

    await deliver(handler, env, num_delivered=2)
    assert seen[0].num_delivered == 2 and seen[0].msg_id == env.event_id


async def test_ensure_stream_is_idempotent_and_updates(js: JetStreamContext, uid: str) -> None:
    first = await ensure_stream(js, f"E{uid}", [f"e{uid}.>"], max_age_s=3600)
    again = await ensure_stream(js, f"E{uid}", [f"e{uid}.>"], max_age_s=7200)
    assert first.config.duplicate_window == 120
    assert again.config.max_age == 7200
    assert len([s for s in await js.streams_info() if s.config.name == f"E{uid}"]) == 1


async def test_consumer_ensure_is_idempotent(js: JetStreamContext, uid: str) -> None:
    await ensure_stream(js, f"E{uid}", [f"e{uid}.>"])

    async def handler(env: Envelope, meta: MessageMeta) -> None:
        return None

    consumer = Consumer(js, f"E{uid}", "w", f"e{uid}.>", handler, max_deliver=4, backoff_s=[1, 2])
    await consumer.ensure()
    await consumer.ensure()
    info = await js.consumer_info(f"E{uid}", "w")
    assert info.config.ack_policy == AckPolicy.EXPLICIT
    assert info.config.max_deliver == 4 + 10  # the handler's 4, then dead-lettering attempts
    assert info.config.backoff == [1, 2]
    assert info.config.filter_subject == f"e{uid}.>"
    # The dead-letter subject is captured by a stream.
    assert await js.find_stream_name_by_subject(consumer.dead_letter_subject) == f"DLQ_E{uid}"
