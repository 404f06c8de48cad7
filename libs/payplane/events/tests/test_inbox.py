from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from sqlalchemy import Column, MetaData, String, Table, func, insert, select

from payplane.events import Inbox

if TYPE_CHECKING:
    from .conftest import Db


async def test_claim_is_true_once_then_false(db: Db) -> None:
    inbox = Inbox(db.inbox)
    async with db.sessions() as session, session.begin():
        assert await inbox.claim(session, "ledger", "evt_1")
    async with db.sessions() as session, session.begin():
        assert not await inbox.claim(session, "ledger", "evt_1")
        assert await inbox.claim(session, "billing", "evt_1")  # per consumer


async def test_rolled_back_claim_can_be_claimed_again(db: Db) -> None:
    inbox = Inbox(db.inbox)
    async with db.sessions() as session:
        async with session.begin():
            assert await inbox.claim(session, "ledger", "evt_1")
            await session.rollback()
    async with db.sessions() as session, session.begin():
        assert await inbox.claim(session, "ledger", "evt_1")


async def test_concurrent_duplicates_apply_the_effect_once(db: Db) -> None:
    metadata = MetaData()
    effects = Table("effects", metadata, Column("event_id", String(64)))
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    inbox = Inbox(db.inbox)
    start = asyncio.Event()

    async def deliver() -> bool:
        await start.wait()
        async with db.sessions() as session, session.begin():
            claimed = await inbox.claim(session, "ledger", "evt_dup")
            if claimed:
                await asyncio.sleep(0.01)  # hold the transaction open a moment
                await session.execute(insert(effects).values(event_id="evt_dup"))
            return claimed

    tasks = [asyncio.create_task(deliver()) for _ in range(12)]
    start.set()
    results = await asyncio.gather(*tasks)

    assert results.count(True) == 1
    async with db.sessions() as session:
        count = (await session.execute(select(func.count()).select_from(effects))).scalar_one()
    assert count == 1


async def test_housekeeping_purges_only_what_is_old_enough(db: Db) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from payplane.events import Outbox, housekeep_once, new_envelope
    from payplane.events.v1 import envelope_pb2

    outbox, inbox = Outbox(db.outbox), Inbox(db.inbox)
    async with db.sessions() as session, session.begin():
        for event_id in ("evt_old", "evt_new", "evt_unsent"):
            payload = envelope_pb2.Envelope(event_id=event_id)
            await outbox.add(
                session, "t.x", new_envelope("t", "test", "s", payload, event_id=event_id)
            )
            await inbox.claim(session, "ledger", event_id)
    long_ago = datetime.now(UTC) - timedelta(days=40)
    async with db.sessions() as session, session.begin():
        t = db.outbox
        await session.execute(update(t).where(t.c.event_id == "evt_old").values(sent_at=long_ago))
        await session.execute(
            update(t).where(t.c.event_id == "evt_new").values(sent_at=datetime.now(UTC))
        )
        i = db.inbox
        await session.execute(
            update(i).where(i.c.event_id == "evt_old").values(processed_at=long_ago)
        )
    assert await housekeep_once(db.sessions, outbox=outbox, inbox=inbox) == (1, 1)
    async with db.sessions() as session:
        left = {r.event_id for r in await session.execute(select(db.outbox.c.event_id))}
        ids = {r.event_id for r in await session.execute(select(db.inbox.c.event_id))}
    assert left == {"evt_new", "evt_unsent"}, "unsent rows are never purged"
    assert ids == {"evt_new", "evt_unsent"}
