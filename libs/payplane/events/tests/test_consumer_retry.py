"""Consumers back off through outages instead of dead-lettering; dead letters are counted and
replayable."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
import sqlalchemy.exc
from nats.js import JetStreamContext
from sqlalchemy import Column, MetaData, String, Table, func, insert, select

from payplane.common.v1.common_pb2 import StripeRef
from payplane.events import (
    Consumer,
    Envelope,
    Inbox,
    MessageMeta,
    RetryableError,
    dead_letter_counts,
    ensure_stream,
    is_retryable,
    list_dead_letters,
    new_envelope,
    publish_envelope,
    replay_dead_letters,
)
from payplane.events.testing import eventually
from payplane.grpckit import errors as domain
from payplane.stripe_gateway import CardDeclined, InvalidRequest, RateLimited, StripeUnavailable

if TYPE_CHECKING:
    from .conftest import Db


def _envelope(n: int = 1) -> Envelope:
    return new_envelope("charge.refunded", "stripe", f"ch_{n}", StripeRef(id=f"ch_{n}"))


@contextlib.asynccontextmanager
async def _running(consumer: Consumer) -> AsyncIterator[None]:
    await consumer.ensure()
    task = asyncio.create_task(consumer.run())
    try:
        yield
    finally:
        consumer.stop()
        await asyncio.wait_for(task, timeout=10)


async def _effects_table(db: Db) -> Table:
    metadata = MetaData()
    effects = Table("effects", metadata, Column("event_id", String(64)))
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    return effects


async def _dlq_messages(js: JetStreamContext, stream: str) -> int:
    return (await dead_letter_counts(js)).get(stream, 0)


def test_the_default_policy_tells_outages_from_bad_messages() -> None:
    unavailable = StripeUnavailable("down", breaker_open=True)
    assert is_retryable(unavailable)
    assert is_retryable(RateLimited("slow down"))
    assert is_retryable(RetryableError("later"))
    assert is_retryable(sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("locked")))
    assert is_retryable(ConnectionResetError())
    # A service's own domain error raised from the gateway's still counts as an outage.
    try:
        try:
            raise unavailable
        except StripeUnavailable as exc:
            raise domain.FailedPrecondition("Stripe did not answer") from exc
    except domain.FailedPrecondition as wrapped:
        assert is_retryable(wrapped)
    assert is_retryable(domain.Unavailable("Stripe unreachable"))
    assert not is_retryable(InvalidRequest("bad param"))
    assert not is_retryable(CardDeclined("declined"))
    assert not is_retryable(ValueError("bad payload"))
    assert not is_retryable(KeyError("id"))


async def test_a_stripe_outage_longer_than_every_redelivery_does_not_dead_letter(
    db: Db, js: JetStreamContext, uid: str
) -> None:
    """Defect 4: five deliveries (1, 5, 30, 120 s) and the effect was dead-lettered for good.

    Here the handler re-reads from a Stripe that stays down for many times max_deliver
    attempts; once Stripe is back the event is applied, once, and nothing is dead-lettered."""
    await ensure_stream(js, f"S{uid}", [f"s{uid}.>"])
    effects = await _effects_table(db)
    inbox = Inbox(db.inbox)
    stripe_down = True
    calls: list[int] = []

    async def handler(env: Envelope, meta: MessageMeta) -> None:
        calls.append(meta.num_delivered)
        if stripe_down:
            raise StripeUnavailable("connection refused", ambiguous=False)
        async with db.sessions() as session, session.begin():
            if await inbox.claim(session, "checkout", env.event_id):
                await session.execute(insert(effects).values(event_id=env.event_id))

    env = _envelope()
    await publish_envelope(js, f"s{uid}.charge", env)
    consumer = Consumer(
        js, f"S{uid}", "checkout", f"s{uid}.>", handler,
        max_deliver=3, backoff_s=[0.2], retry_backoff_s=0.02, retry_max_backoff_s=0.1,
    )  # fmt: skip
    async with _running(consumer):

        async def outlasted_every_delivery() -> bool:
            return len(calls) >= 3 * consumer.max_deliver

        await eventually(outlasted_every_delivery)
        assert consumer.held == 1
        stripe_down = False

        async def acked() -> bool:
            info = await js.consumer_info(f"S{uid}", "checkout")
            return bool(info.ack_floor.stream_seq == 1 and info.num_ack_pending == 0)

        await eventually(acked)

    assert await _dlq_messages(js, f"DLQ_S{uid}") == 0
    # Held rather than redelivered: the delivery count stayed far below max_deliver.
    assert max(calls) < consumer.max_deliver
    async with db.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(effects))).scalar_one() == 1


async def test_a_held_message_does_not_hold_up_the_ones_behind_it(
    js: JetStreamContext, uid: str
) -> None:
    await ensure_stream(js, f"S{uid}", [f"s{uid}.>"])
    stuck, other = _envelope(1), _envelope(2)
    applied: list[str] = []
    release = asyncio.Event()

    async def handler(env: Envelope, meta: MessageMeta) -> None:
        if env.event_id == stuck.event_id and not release.is_set():
            raise RetryableError("the database of a dependency is down")
        applied.append(env.event_id)

    await publish_envelope(js, f"s{uid}.a", stuck)
    await publish_envelope(js, f"s{uid}.b", other)
    consumer = Consumer(
        js, f"S{uid}", "w", f"s{uid}.>", handler, retry_backoff_s=0.02, retry_max_backoff_s=0.05
    )
    async with _running(consumer):

        async def other_applied() -> bool:
            return applied == [other.event_id]

        await eventually(other_applied)
        release.set()

        async def both() -> bool:
            return applied == [other.event_id, stuck.event_id]

        await eventually(both)


async def test_a_permanent_failure_still_dead_letters_after_max_deliver(
    js: JetStreamContext, uid: str, caplog: pytest.LogCaptureFixture
) -> None:
    await ensure_stream(js, f"S{uid}", [f"s{uid}.>"])
    attempts: list[int] = []

    async def handler(env: Envelope, meta: MessageMeta) -> None:
        attempts.append(meta.num_delivered)
        raise InvalidRequest("No such charge: 'ch_1'", param="charge")

    await publish_envelope(js, f"s{uid}.charge", _envelope())
    consumer = Consumer(
        js, f"S{uid}", "checkout", f"s{uid}.>", handler, max_deliver=3, backoff_s=[0.05]
    )
    with caplog.at_level(logging.ERROR, logger="payplane.events.consumer"):
        async with _running(consumer):

            async def dead_lettered() -> bool:
                return await _dlq_messages(js, f"DLQ_S{uid}") == 1

            await eventually(dead_lettered)
    assert attempts == [1, 2, 3]
    assert consumer.dead_letter_stream == f"DLQ_S{uid}"
    assert any("dead-lettered" in r.getMessage() for r in caplog.records)


async def test_dead_letters_are_counted_listed_and_replayed_once(
    db: Db, js: JetStreamContext, uid: str
) -> None:
    await ensure_stream(js, f"S{uid}", [f"s{uid}.>"])
    effects = await _effects_table(db)
    inbox = Inbox(db.inbox)
    broken = True

    async def handler(env: Envelope, meta: MessageMeta) -> None:
        if broken:
            raise ValueError("a bug, fixed by the next deploy")
        async with db.sessions() as session, session.begin():
            if await inbox.claim(session, "ledger", env.event_id):
                await session.execute(insert(effects).values(event_id=env.event_id))

    envs = [_envelope(1), _envelope(2)]
    for env in envs:
        await publish_envelope(js, f"s{uid}.charge", env)
    consumer = Consumer(
        js, f"S{uid}", "ledger", f"s{uid}.>", handler, max_deliver=2, backoff_s=[0.05]
    )
    dlq = f"DLQ_S{uid}"
    async with _running(consumer):

        async def both_dead() -> bool:
            return await _dlq_messages(js, dlq) == 2

        await eventually(both_dead)
        letters = await list_dead_letters(js, dlq)
        assert [(d.msg_id, d.subject, d.consumer) for d in letters] == [
            (e.event_id, f"s{uid}.charge", "ledger") for e in envs
        ]
        assert "ValueError" in letters[0].error and letters[0].deliveries == 2

        broken = False
        result = await replay_dead_letters(js, dlq, consumer="ledger")
        assert (result.replayed, result.skipped) == (2, 0)
        assert await _dlq_messages(js, dlq) == 0

        async def applied() -> bool:
            async with db.sessions() as session:
                q = select(func.count()).select_from(effects)
                return int((await session.execute(q)).scalar_one()) == 2

        await eventually(applied)
        # Nothing left to replay; a second replay is a no-op.
        assert (await replay_dead_letters(js, dlq)).replayed == 0

    async with db.sessions() as session:
        rows = (await session.execute(select(effects.c.event_id))).scalars().all()
    assert sorted(rows) == sorted(e.event_id for e in envs)


async def test_a_replay_within_the_duplicate_window_is_not_dropped(
    js: JetStreamContext, uid: str
) -> None:
    """Dead-lettered seconds after it was published, its id is still in the stream's window:
    the replay must still reach the consumer."""
    await ensure_stream(js, f"S{uid}", [f"s{uid}.>"])
    seen: list[int] = []

    async def handler(env: Envelope, meta: MessageMeta) -> None:
        seen.append(meta.stream_seq)
        if len(seen) == 1:
            raise ValueError("first time only")

    await publish_envelope(js, f"s{uid}.x", _envelope())
    consumer = Consumer(js, f"S{uid}", "w", f"s{uid}.>", handler, max_deliver=1)
    async with _running(consumer):

        async def dead() -> bool:
            return await _dlq_messages(js, f"DLQ_S{uid}") == 1

        await eventually(dead)
        assert (await replay_dead_letters(js, f"DLQ_S{uid}")).replayed == 1

        async def handled_again() -> bool:
            return len(seen) == 2

        await eventually(handled_again)
    assert seen[1] != seen[0]  # a new stream message, not a redelivery


async def test_a_message_failing_retryably_past_the_horizon_is_dead_lettered(
    js: JetStreamContext, uid: str
) -> None:
    await ensure_stream(js, f"S{uid}", [f"s{uid}.>"])

    async def handler(env: Envelope, meta: MessageMeta) -> None:
        raise RateLimited("429 for ever")

    await publish_envelope(js, f"s{uid}.x", _envelope())
    consumer = Consumer(
        js, f"S{uid}", "w", f"s{uid}.>", handler,
        retry_backoff_s=0.02, retry_max_backoff_s=0.05, retry_horizon_s=0.3,
    )  # fmt: skip
    async with _running(consumer):

        async def dead() -> bool:
            return await _dlq_messages(js, f"DLQ_S{uid}") == 1

        await eventually(dead)
    (letter,) = await list_dead_letters(js, f"DLQ_S{uid}")
    assert "still failing retryably" in letter.error and letter.deliveries == 1
