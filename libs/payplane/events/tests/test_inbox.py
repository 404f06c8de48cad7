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
