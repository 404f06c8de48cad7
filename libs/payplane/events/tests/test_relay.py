from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import pytest
from nats.js import JetStreamContext
from nats.js.api import PubAck
from sqlalchemy import func, select

from payplane.common.v1.common_pb2 import StripeRef
from payplane.events import (
    MSG_ID_HEADER,
    Outbox,
    PublishError,
    Relay,
    ensure_stream,
    new_envelope,
    publish_envelope,
)
from payplane.events.testing import eventually

if TYPE_CHECKING:
    from .conftest import Db


def _envelope(n: int) -> Any:
    return new_envelope("payment.succeeded", "checkout", f"pi_{n}", StripeRef(id=f"pi_{n}"))


async def _msg_ids(js: JetStreamContext, stream: str) -> list[str]:
    """Nats-Msg-Id of every message in the stream, in stream order."""
    info = await js.stream_info(stream)
    ids = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(stream, seq)
        ids.append((msg.headers or {}).get(MSG_ID_HEADER, ""))
    return ids


async def _add(db: Db, subject: str, count: int) -> list[str]:
    outbox = Outbox(db.outbox)
    ids = []
    async with db.sessions() as session, session.begin():
        for n in range(count):
            env = _envelope(n)
            await outbox.add(session, subject, env)
            ids.append(env.event_id)
    return ids


async def _unsent(db: Db) -> int:
    async with db.sessions() as session:
        q = select(func.count()).select_from(db.outbox).where(db.outbox.c.sent_at.is_(None))
        return int((await session.execute(q)).scalar_one())


async def _drain(relay: Relay) -> None:
    for _ in range(100):
        if await relay.run_once() == 0:
            return
    raise AssertionError("relay never drained the outbox")


class _SpyJs:
    """Forwards to a real JetStreamContext, counting publishes and duplicate acks."""

    def __init__(self, js: JetStreamContext) -> None:
        self._js = js
        self.published = 0
        self.duplicates = 0

    async def publish(self, *args: Any, **kwargs: Any) -> PubAck:
        ack = await self._js.publish(*args, **kwargs)
        self.published += 1
        self.duplicates += bool(ack.duplicate)
        return ack


async def test_relay_publishes_in_order_and_marks_sent(
    db: Db, js: JetStreamContext, uid: str
) -> None:
    await ensure_stream(js, f"R{uid}", [f"r{uid}.>"])
    ids = await _add(db, f"r{uid}.payment", 5)

    assert await Relay(db.sessions, db.outbox, js).run_once() == 5
    assert await _unsent(db) == 0
    assert await _msg_ids(js, f"R{uid}") == ids
    assert await Relay(db.sessions, db.outbox, js).run_once() == 0


async def test_rolled_back_add_publishes_nothing(db: Db, js: JetStreamContext, uid: str) -> None:
    await ensure_stream(js, f"R{uid}", [f"r{uid}.>"])
    with contextlib.suppress(RuntimeError):
        async with db.sessions() as session, session.begin():
            await Outbox(db.outbox).add(session, f"r{uid}.x", _envelope(1))
            raise RuntimeError("the state change failed")
    assert await Relay(db.sessions, db.outbox, js).run_once() == 0
    assert (await js.stream_info(f"R{uid}")).state.messages == 0


async def test_same_msg_id_is_stored_once(js: JetStreamContext, uid: str) -> None:
    await ensure_stream(js, f"D{uid}", [f"d{uid}.>"])
    env = _envelope(1)
    first = await publish_envelope(js, f"d{uid}.x", env)
    second = await publish_envelope(js, f"d{uid}.x", env)
    assert not first.duplicate and second.duplicate
    assert await _msg_ids(js, f"D{uid}") == [env.event_id]


async def test_relay_crash_after_publish_before_mark_loses_and_duplicates_nothing(
    db: Db, js: JetStreamContext, uid: str
) -> None:
    await ensure_stream(js, f"C{uid}", [f"c{uid}.>"])
    ids = await _add(db, f"c{uid}.payment", 10)
    acked_three = asyncio.Event()

    class _HangsAfterThree(_SpyJs):
        async def publish(self, *args: Any, **kwargs: Any) -> PubAck:
            ack = await super().publish(*args, **kwargs)
            if self.published == 3:
                acked_three.set()
                await asyncio.Event().wait()  # the process "dies" here: acked, not marked
            return ack

    doomed = Relay(db.sessions, db.outbox, _HangsAfterThree(js))
    task = asyncio.create_task(doomed.run())
    await asyncio.wait_for(acked_three.wait(), timeout=10)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    assert await _unsent(db) == 10  # nothing was marked: the acks were not recorded
    assert len(await _msg_ids(js, f"C{uid}")) == 3

    spy = _SpyJs(js)
    await _drain(Relay(db.sessions, db.outbox, spy))

    assert spy.duplicates == 3  # the restart did re-publish; JetStream dropped the copies
    assert await _unsent(db) == 0
    assert await _msg_ids(js, f"C{uid}") == ids


async def test_publish_failure_marks_what_was_acked_and_keeps_the_rest(
    db: Db, js: JetStreamContext, uid: str
) -> None:
    # Only the first subject is captured by a stream: the second event has no responder.
    await ensure_stream(js, f"F{uid}", [f"f{uid}.ok"])
    outbox = Outbox(db.outbox)
    async with db.sessions() as session, session.begin():
        await outbox.add(session, f"f{uid}.ok", _envelope(1))
        await outbox.add(session, f"f{uid}.nowhere", _envelope(2))
        await outbox.add(session, f"f{uid}.ok", _envelope(3))

    with pytest.raises(PublishError):
        await Relay(db.sessions, db.outbox, js).run_once()
    assert await _unsent(db) == 2  # the first is marked; order holds the third back
    assert len(await _msg_ids(js, f"F{uid}")) == 1


async def test_two_relays_share_an_outbox_without_duplicates(
    db: Db, js: JetStreamContext, uid: str
) -> None:
    await ensure_stream(js, f"T{uid}", [f"t{uid}.>"])
    ids = await _add(db, f"t{uid}.payment", 60)
    spies = [_SpyJs(js), _SpyJs(js)]
    relays = [Relay(db.sessions, db.outbox, s, batch_size=7) for s in spies]

    await asyncio.gather(*(_drain(r) for r in relays))

    assert await _unsent(db) == 0
    assert sorted(await _msg_ids(js, f"T{uid}")) == sorted(ids)
    if db.dialect == "postgresql":
        # SKIP LOCKED: each row went to exactly one relay.
        assert sum(s.published for s in spies) == 60


async def test_relay_loop_runs_until_stopped(db: Db, js: JetStreamContext, uid: str) -> None:
    await ensure_stream(js, f"L{uid}", [f"l{uid}.>"])
    relay = Relay(db.sessions, db.outbox, js, poll_interval=0.05)
    task = asyncio.create_task(relay.run())
    ids = await _add(db, f"l{uid}.payment", 3)

    async def all_sent() -> bool:
        return await _unsent(db) == 0

    await eventually(all_sent)
    relay.stop()
    await asyncio.wait_for(task, timeout=10)
    assert await _msg_ids(js, f"L{uid}") == ids
