"""The relay under faults: poison rows are parked, outages keep order, reads never wait on NATS."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from nats.js import JetStreamContext
from nats.js.api import PubAck, StreamConfig
from sqlalchemy import MetaData, func, select

from payplane.common.v1.common_pb2 import StripeRef
from payplane.db import create_engine, session_factory
from payplane.events import (
    Consumer,
    Envelope,
    MessageMeta,
    Outbox,
    Relay,
    ensure_stream,
    new_envelope,
    outbox_table,
)
from payplane.events.testing import eventually

if TYPE_CHECKING:
    from .conftest import Db


def _envelope(n: int, ref: str | None = None) -> Envelope:
    return new_envelope("payment.failed", "checkout", f"pi_{n}", StripeRef(id=ref or f"pi_{n}"))


async def _add(db: Db, subject: str, *envelopes: Envelope) -> None:
    async with db.sessions() as session, session.begin():
        for env in envelopes:
            await Outbox(db.outbox).add(session, subject, env)


async def _stream_ids(js: JetStreamContext, stream: str) -> list[str]:
    info = await js.stream_info(stream)
    if info.state.messages == 0:
        return []
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(stream, seq)
        out.append((msg.headers or {}).get("Nats-Msg-Id", ""))
    return out


async def _row(db: Db, event_id: str) -> Any:
    async with db.sessions() as session:
        q = select(db.outbox).where(db.outbox.c.event_id == event_id)
        return (await session.execute(q)).one()


@contextlib.asynccontextmanager
async def _looping(relay: Relay) -> AsyncIterator[None]:
    task = asyncio.create_task(relay.run())
    try:
        yield
    finally:
        relay.stop()
        await asyncio.wait_for(task, timeout=10)


async def test_an_oversized_event_is_parked_and_the_ones_behind_it_flow(
    db: Db, js: JetStreamContext, uid: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Defect 2: a payment.failed event over NATS's max payload stopped the relay for good."""
    await ensure_stream(js, f"P{uid}", [f"p{uid}.>"])
    # 2 MB of random text: deflated it still takes 1.5 MB, over the 1 MB max payload.
    poison = _envelope(2, ref=base64.b64encode(os.urandom(1_500_000)).decode())
    first, last = _envelope(1), _envelope(3)
    await _add(db, f"p{uid}.payment", first, poison, last)

    relay = Relay(db.sessions, db.outbox, js, poll_interval=0.02, max_backoff_s=0.05)
    with caplog.at_level(logging.ERROR, logger="payplane.events.relay"):
        async with _looping(relay):

            async def both_published() -> bool:
                return len(await _stream_ids(js, f"P{uid}")) == 2

            await eventually(both_published)

            async def parked() -> bool:
                async with db.sessions() as session:
                    return await Outbox(db.outbox).count_parked(session) == 1

            await eventually(parked)

    assert await _stream_ids(js, f"P{uid}") == [first.event_id, last.event_id]
    row = await _row(db, poison.event_id)
    assert row.sent_at is None and row.parked_at is not None
    assert "max payload" in row.last_error
    assert any(poison.event_id in r.getMessage() for r in caplog.records if r.levelname == "ERROR")


async def test_an_oversized_but_compressible_event_is_published_and_decoded(
    db: Db, js: JetStreamContext, uid: str
) -> None:
    """A 1.2 MB customer_ref of repeated text fits once deflated; consumers inflate it."""
    await ensure_stream(js, f"Z{uid}", [f"z{uid}.>"])
    big = _envelope(1, ref="cust-" + "x" * 1_200_000)
    after = _envelope(2)
    await _add(db, f"z{uid}.payment", big, after)

    relay = Relay(db.sessions, db.outbox, js, poll_interval=0.02, max_backoff_s=0.05)
    async with _looping(relay):

        async def published() -> bool:
            return len(await _stream_ids(js, f"Z{uid}")) == 2

        await eventually(published)

    got: list[Envelope] = []

    async def handler(env: Envelope, meta: MessageMeta) -> None:
        got.append(env)

    consumer = Consumer(js, f"Z{uid}", "reader", f"z{uid}.>", handler)
    await consumer.ensure()
    task = asyncio.create_task(consumer.run())
    try:

        async def both() -> bool:
            return len(got) == 2

        await eventually(both)
    finally:
        consumer.stop()
        await asyncio.wait_for(task, timeout=10)
    assert got[0] == big and got[1] == after


async def test_a_row_failing_every_attempt_is_parked_after_max_attempts(
    db: Db, js: JetStreamContext, uid: str
) -> None:
    """No stream captures the middle event's subject: after max_attempts it is set aside,
    then an operator fixes the stream and requeues it."""
    await ensure_stream(js, f"N{uid}", [f"n{uid}.ok"])
    a, lost, b = _envelope(1), _envelope(2), _envelope(3)
    await _add(db, f"n{uid}.ok", a)
    await _add(db, f"n{uid}.nowhere", lost)
    await _add(db, f"n{uid}.ok", b)

    relay = Relay(
        db.sessions, db.outbox, js, poll_interval=0.02, max_backoff_s=0.05, max_attempts=3
    )
    async with _looping(relay):

        async def flowed() -> bool:
            return await _stream_ids(js, f"N{uid}") == [a.event_id, b.event_id]

        await eventually(flowed)
    row = await _row(db, lost.event_id)
    assert row.parked_at is not None and row.attempts == 3 and row.last_error

    await ensure_stream(js, f"N{uid}", [f"n{uid}.ok", f"n{uid}.nowhere"])
    async with db.sessions() as session, session.begin():
        assert await Outbox(db.outbox).unpark(session, [lost.event_id]) == 1
    assert await relay.run_once() == 1
    assert (await _stream_ids(js, f"N{uid}"))[-1] == lost.event_id
    async with db.sessions() as session:
        assert await Outbox(db.outbox).count_parked(session) == 0


class _StalledJs:
    """Publishes block until `release` is set (NATS stalled); `entered` says one is waiting."""

    def __init__(self, js: JetStreamContext) -> None:
        self._js = js
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.published = 0

    async def publish(self, *args: Any, **kwargs: Any) -> PubAck:
        self.entered.set()
        await self.release.wait()
        ack = await self._js.publish(*args, **kwargs)
        self.published += 1
        return ack


async def test_reads_on_the_single_sqlite_connection_do_not_wait_for_a_stalled_publish(
    js: JetStreamContext, uid: str, tmp_path: Path
) -> None:
    """Defect 6: the relay held checkout's only SQLite connection while publishing."""
    await ensure_stream(js, f"W{uid}", [f"w{uid}.>"])
    engine = create_engine(f"sqlite:///{tmp_path / 'one-connection.db'}")  # pool of one
    metadata = MetaData()
    table = outbox_table(metadata)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    sessions = session_factory(engine)
    try:
        async with sessions() as session, session.begin():
            await Outbox(table).add(session, f"w{uid}.x", _envelope(1))
        stalled = _StalledJs(js)
        relay = Relay(sessions, table, stalled)
        batch = asyncio.create_task(relay.run_once())
        await asyncio.wait_for(stalled.entered.wait(), timeout=10)

        async def read() -> int:
            async with sessions() as session:
                q = select(func.count()).select_from(table)
                return int((await session.execute(q)).scalar_one())

        # The pool's own timeout is 30 s: a read stuck behind the relay would never answer here.
        assert await asyncio.wait_for(read(), timeout=10) == 1
        assert not batch.done()
        stalled.release.set()
        assert await asyncio.wait_for(batch, timeout=10) == 1
    finally:
        await engine.dispose()


async def test_a_second_relay_does_not_publish_a_batch_another_one_holds(
    db: Db, js: JetStreamContext, uid: str
) -> None:
    """Claims (a lease) keep replicas apart once the connection is released before publishing."""
    await ensure_stream(js, f"H{uid}", [f"h{uid}.>"])
    await _add(db, f"h{uid}.x", _envelope(1), _envelope(2))
    stalled = _StalledJs(js)
    holder = Relay(db.sessions, db.outbox, stalled)
    batch = asyncio.create_task(holder.run_once())
    await asyncio.wait_for(stalled.entered.wait(), timeout=10)

    other = _StalledJs(js)
    other.release.set()
    assert await Relay(db.sessions, db.outbox, other).run_once() == 0
    assert other.published == 0

    stalled.release.set()
    assert await asyncio.wait_for(batch, timeout=10) == 2
    assert len(await _stream_ids(js, f"H{uid}")) == 2


async def test_a_lease_left_by_a_hung_relay_expires_and_another_relay_takes_over(
    db: Db, js: JetStreamContext, uid: str
) -> None:
    await ensure_stream(js, f"E{uid}", [f"e{uid}.>"])
    env = _envelope(1)
    await _add(db, f"e{uid}.x", env)
    hung = _StalledJs(js)  # never released: the process hangs forever mid-publish
    stuck = asyncio.create_task(Relay(db.sessions, db.outbox, hung, lease_s=0.5).run_once())
    await asyncio.wait_for(hung.entered.wait(), timeout=10)
    try:
        taker = Relay(db.sessions, db.outbox, js, lease_s=0.5)

        async def taken_over() -> bool:
            return await taker.run_once() == 1

        await eventually(taken_over)
        assert await _stream_ids(js, f"E{uid}") == [env.event_id]
    finally:
        stuck.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stuck


async def test_a_message_the_stream_refuses_is_parked_and_the_rest_flow(
    db: Db, js: JetStreamContext, uid: str
) -> None:
    """JetStream answers with an error for this message (over the stream's max_msg_size)."""
    await js.add_stream(StreamConfig(name=f"M{uid}", subjects=[f"m{uid}.>"], max_msg_size=400))
    small, big, after = _envelope(1), _envelope(2, ref="x" * 1_000), _envelope(3)
    await _add(db, f"m{uid}.x", small, big, after)
    relay = Relay(
        db.sessions, db.outbox, js, poll_interval=0.02, max_backoff_s=0.05, max_attempts=2
    )
    async with _looping(relay):

        async def flowed() -> bool:
            return await _stream_ids(js, f"M{uid}") == [small.event_id, after.event_id]

        await eventually(flowed)
    row = await _row(db, big.event_id)
    assert row.parked_at is not None and row.attempts == 2
    assert "message size exceeds maximum allowed" in row.last_error
