"""The relay and a consumer through a NATS outage: order kept, nothing parked, nothing lost;
and an outbox table from before the relay's columns, upgraded in place."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from nats.js import JetStreamContext
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    insert,
    inspect,
    select,
)
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from payplane.common.v1.common_pb2 import StripeRef
from payplane.events import (
    Consumer,
    Envelope,
    EventsWatch,
    MessageMeta,
    Outbox,
    Relay,
    ensure_stream,
    new_envelope,
    outbox_table,
    upgrade_outbox_table,
)
from payplane.events.testing import eventually
from payplane.natsconn import connect_nats
from payplane.natsd import NatsServer


def _envelope(n: int) -> Envelope:
    return new_envelope("payment.succeeded", "checkout", f"pi_{n}", StripeRef(id=f"pi_{n}"))


async def test_an_outage_keeps_order_parks_nothing_and_loses_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}")
    metadata = MetaData()
    table = outbox_table(metadata)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    outbox = Outbox(table)

    async def add(envs: list[Envelope]) -> None:
        async with sessions() as session, session.begin():
            for env in envs:
                await outbox.add(session, "out.payment", env)

    async def declare(js: JetStreamContext) -> None:
        await ensure_stream(js, "OUT", ["out.>"])

    server = await NatsServer(store_dir=tmp_path / "nats").start()
    nats = await connect_nats(server.url, name="outage", on_connect=[declare], timeout_s=10)
    got: list[str] = []

    async def handler(env: Envelope, meta: MessageMeta) -> None:
        got.append(env.event_id)

    # Few attempts before parking: an outage must not count toward them at all.
    relay = Relay(sessions, table, nats.jetstream, poll_interval=0.02, max_backoff_s=0.2,
                  max_attempts=2, publish_timeout_s=0.5)  # fmt: skip
    consumer = Consumer(nats.jetstream, "OUT", "reader", "out.>", handler)
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(consumer.run())]
    try:
        before = [_envelope(n) for n in range(3)]
        await add(before)

        async def first_three() -> bool:
            return got == [e.event_id for e in before]

        await eventually(first_three)

        await server.stop()
        during = [_envelope(n) for n in range(3, 8)]
        with caplog.at_level(logging.WARNING, logger="payplane.events.relay"):
            await add(during)

            async def failed_a_few_times() -> bool:
                return sum("batch failed" in r.getMessage() for r in caplog.records) >= 4

            await eventually(failed_a_few_times)
        async with sessions() as session:
            assert await outbox.count_parked(session) == 0
            attempts = (await session.execute(select(table.c.attempts))).scalars().all()
            assert set(attempts) == {0}

        await server.start()

        async def all_in_order() -> bool:
            return got == [e.event_id for e in before + during]

        await eventually(all_in_order, timeout_s=30)
        watch = await EventsWatch(nats.jetstream, sessions=sessions, outbox=outbox).check()
        assert watch.parked == 0 and not watch.needs_operator
    finally:
        relay.stop()
        consumer.stop()
        for task in tasks:
            await asyncio.wait_for(task, timeout=10)
        await nats.close()
        await server.stop()
        await engine.dispose()


def _old_outbox(metadata: MetaData) -> Table:
    """The outbox as services created it before the relay's claim and parking columns."""
    return Table(
        "outbox",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("event_id", String(128), nullable=False, unique=True),
        Column("subject", String(255), nullable=False),
        Column("envelope", LargeBinary, nullable=False),
        Column("headers", JSON, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("sent_at", DateTime(timezone=True), nullable=True, index=True),
    )


async def test_an_outbox_from_before_the_relay_columns_is_upgraded_in_place(
    tmp_path: Path, js: JetStreamContext, uid: str
) -> None:
    await ensure_stream(js, f"U{uid}", [f"u{uid}.>"])
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    old = MetaData()
    _old_outbox(old)
    async with engine.begin() as conn:
        await conn.run_sync(old.create_all)
        env = _envelope(1)
        await conn.execute(
            insert(old.tables["outbox"]).values(
                event_id=env.event_id,
                subject=f"u{uid}.x",
                envelope=env.SerializeToString(),
                headers={},
                created_at=datetime.now(UTC),
            )
        )

    def upgrade(sync_conn: object) -> list[str]:
        ctx = MigrationContext.configure(sync_conn)
        with Operations.context(ctx):
            upgrade_outbox_table("outbox")
            upgrade_outbox_table("outbox")  # a second time changes nothing
        return [c["name"] for c in inspect(sync_conn).get_columns("outbox")]

    async with engine.begin() as conn:
        columns = await conn.run_sync(upgrade)
    assert {"claim_token", "claimed_until", "attempts", "last_error", "parked_at"} <= set(columns)

    table = outbox_table(MetaData())
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        assert await Relay(sessions, table, js).run_once() == 1
    finally:
        await engine.dispose()
