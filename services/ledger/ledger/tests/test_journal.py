"""The journal on real databases: hash chain and tamper detection, idempotency, one booking per
balance transaction, point-in-time balances; property tests over stored postings."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledger.adapters import tables
from ledger.adapters.journal import Journal
from ledger.bootstrap import MIGRATIONS
from ledger.domain.entries import JournalEntry
from ledger.domain.rules import BalanceTransaction as BT
from ledger.domain.rules import Settlement, from_balance_transaction, payment_succeeded
from ledger.service.handlers import Ledger
from ledger.verify import main as verify_main
from payplane.db import create_engine, run_migrations, session_factory
from payplane.db.testing import TestDatabase, db_url_fixture
from payplane.events import Inbox

from .test_domain import _entries

db_url = db_url_fixture()


@pytest.fixture
async def sessions(db_url: TestDatabase) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await run_migrations(db_url.url, MIGRATIONS, schema=db_url.schema)
    engine = create_engine(db_url.url, schema=db_url.schema)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


def paid(n: int, gross: int = 10_000, fee: int = 320) -> JournalEntry:
    s = Settlement(f"txn_{n}", "usd", gross, fee, gross - fee)
    return payment_succeeded(f"evt_{n}", f"pay_{n}", s, {"charge": f"ch_{n}"})


async def append(
    sessions: async_sessionmaker[AsyncSession], *batch: JournalEntry
) -> list[str | None]:
    async with sessions.begin() as session:
        return await Journal(session).append_many(list(batch))


async def test_the_chain_verifies_and_detects_tampering(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ledger = Ledger(sessions, Inbox(tables.inbox))
    await append(sessions, paid(1))
    await append(sessions, paid(2), paid(3), paid(4))
    assert await ledger.verify() == []
    async with sessions() as session:
        stored = [e for batch in [b async for b in Journal(session).iter_chain()] for e in batch]
    assert [e.seq for e in stored] == [1, 2, 3, 4]
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(stored))

    # Someone edits two postings of entry 2 (it still balances).
    async with sessions.begin() as session:
        for account, delta in (("stripe_fees", 100), ("revenue", -100)):
            await session.execute(
                text(
                    "UPDATE postings SET amount = amount + :d WHERE entry_seq = 2 AND account = :a"
                ),
                {"d": delta, "a": account},
            )
    problems = await ledger.verify()
    assert [p.seq for p in problems if "content" in p.reason] == [2], problems
    # ...and the running balances no longer equal the postings either.
    assert {p.reason.split(")")[0] for p in problems if p.seq == 0} == {
        "balance ('revenue', 'usd'",
        "balance ('stripe_fees', 'usd'",
    }
    # Or rewrites a description and recomputes that entry's hash: the next link breaks.
    async with sessions.begin() as session:
        await session.execute(
            update(tables.entries).where(tables.entries.c.seq == 3).values(description="x")
        )
    assert {p.seq for p in await ledger.verify() if p.seq} == {2, 3}


async def test_verify_command_exit_codes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    await run_migrations(url, MIGRATIONS)
    engine = create_engine(url)
    try:
        sessions = session_factory(engine)
        await append(sessions, paid(1), paid(2))
        assert await asyncio.to_thread(verify_main, ["--database-url", url]) == 0
        async with sessions.begin() as session:
            await session.execute(
                text("DELETE FROM postings WHERE entry_seq = 1 AND account = 'stripe_fees'")
            )
        assert await asyncio.to_thread(verify_main, ["--database-url", url]) == 1
    finally:
        await engine.dispose()


async def test_idempotent_by_event_and_one_booking_per_balance_transaction(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    first = await append(sessions, paid(1))
    assert first[0] is not None
    assert await append(sessions, paid(1)) == [None]  # the same event again
    # Healing books the same balance transaction from Stripe's record: refused, it is booked.
    bt = BT("txn_1", "charge", "charge", "ch_1", "usd", 10_000, 320, 9_680, "pending")
    heal = from_balance_transaction(bt, "heal:missing_in_ledger:txn_1", "reconciliation.healed")
    assert heal is not None
    assert await append(sessions, heal) == [None]
    # The other way round: healed first, the late event is skipped.
    bt2 = BT("txn_2", "charge", "charge", "ch_2", "usd", 5_000, 175, 4_825, "pending")
    healed = from_balance_transaction(bt2, "heal:missing_in_ledger:txn_2", "reconciliation.healed")
    assert healed is not None
    assert (await append(sessions, healed))[0] is not None
    assert await append(sessions, paid(2, 5_000, 175)) == [None]
    async with sessions() as session:
        assert await Journal(session).balance("revenue", "usd") == (-15_000, 2)


async def test_balances_at_a_point_in_time(sessions: async_sessionmaker[AsyncSession]) -> None:
    t0 = datetime.now(UTC)
    async with sessions.begin() as session:
        await Journal(session).append(paid(1), now=t0)
        await Journal(session).append(paid(2, 2_000, 88), now=t0 + timedelta(hours=1))
    async with sessions() as session:
        j = Journal(session)
        assert (await j.balance_as_of("revenue", "usd", seq=1))[0] == -10_000
        assert (await j.balance_as_of("revenue", "usd", at=t0))[0] == -10_000
        assert (await j.balance_as_of("revenue", "usd", at=t0, before=True))[0] == 0
        assert (await j.balance_as_of("revenue", "usd"))[0] == -12_000


@settings(max_examples=15, deadline=None)
@given(st.lists(_entries(), min_size=1, max_size=12), st.integers(1, 6))
def test_stored_postings_stay_balanced_and_reversals_restore(
    made: list[JournalEntry], batch: int
) -> None:
    """Any sequence of valid entries, appended in any batching, keeps every currency at zero
    and the running balances equal to the postings; reversing everything restores zero."""

    async def check() -> None:
        engine = create_engine("sqlite:///:memory:")
        try:
            async with engine.begin() as conn:
                await conn.run_sync(tables.metadata.create_all)
            sessions = session_factory(engine)
            for i in range(0, len(made), batch):
                await append(sessions, *made[i : i + batch])
            async with sessions() as session:
                j = Journal(session)
                stored, totals = await j.stored_balances(), await j.totals()
            assert stored == totals
            per_currency: dict[str, int] = {}
            for (_, currency), amount in totals.items():
                per_currency[currency] = per_currency.get(currency, 0) + amount
            assert all(v == 0 for v in per_currency.values())
            await append(sessions, *[e.reversed(f"rev-{e.source_event_id}", "undo") for e in made])
            async with sessions() as session:
                assert all(v == 0 for v in (await Journal(session).totals()).values())
            assert await Ledger(sessions, Inbox(tables.inbox)).verify() == []
        finally:
            await engine.dispose()

    asyncio.run(check())
