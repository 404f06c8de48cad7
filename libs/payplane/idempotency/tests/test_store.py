from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, MetaData, String, Table, func, insert, select

from payplane.db import create_engine, session_factory
from payplane.db.testing import postgres_schema, postgres_url
from payplane.idempotency import (
    IdempotencyBackend,
    IdempotencyStore,
    InProgress,
    InvalidKey,
    KeyReused,
    LeaseLost,
    Record,
    Replay,
    Started,
    bind_current,
    current,
    derive_stripe_key,
    idempotency_table,
)
from payplane.idempotency.testing import FakeClock, InMemoryIdempotencyStore

LEASE_S = 30.0
TTL_S = 3600.0


class Harness:
    def __init__(self, store: IdempotencyBackend, clock: FakeClock, rows: object) -> None:
        self.store = store
        self.clock = clock
        self._rows = rows

    async def count(self) -> int:
        if isinstance(self.store, InMemoryIdempotencyStore):
            return len(self.store.rows)
        assert callable(self._rows)
        result: int = await self._rows()
        return result


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    clock = FakeClock()
    if request.param == "memory":
        yield Harness(
            InMemoryIdempotencyStore(ttl_s=TTL_S, lease_s=LEASE_S, clock=clock), clock, None
        )
        return
    if request.param == "sqlite":
        async for h in _sql_harness(f"sqlite:///{tmp_path / 'idem.db'}", None, clock):
            yield h
        return
    url = postgres_url()
    if url is None:
        pytest.skip("TEST_POSTGRES_URL is not set; the PostgreSQL variant needs a server")
    async with postgres_schema(url) as schema:
        async for h in _sql_harness(url, schema, clock):
            yield h


async def _sql_harness(url: str, schema: str | None, clock: FakeClock) -> AsyncIterator[Harness]:
    engine = create_engine(url, schema=schema)
    metadata = MetaData()
    table = idempotency_table(metadata)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    sessions = session_factory(engine)
    store = IdempotencyStore(sessions, table, ttl_s=TTL_S, lease_s=LEASE_S, clock=clock)

    async def rows() -> int:
        async with sessions() as session:
            return int(
                (await session.execute(select(func.count()).select_from(table))).scalar_one()
            )

    try:
        yield Harness(store, clock, rows)
    finally:
        await engine.dispose()


async def _start(h: Harness, key: str = "k1", request_hash: str = "h1") -> Record:
    outcome = await h.store.begin("storefront", "/svc/Pay", key, request_hash)
    assert isinstance(outcome, Started)
    return outcome.record


async def test_a_finished_key_replays_its_response(harness: Harness) -> None:
    record = await _start(harness)
    assert record.recovery_point is None and not record.resumed
    await harness.store.finish(record, b"reply-bytes")
    again = await harness.store.begin("storefront", "/svc/Pay", "k1", "h1")
    assert again == Replay(b"reply-bytes", 0, "")


async def test_a_stored_error_replays_code_and_details(harness: Harness) -> None:
    record = await _start(harness)
    await harness.store.finish(record, b"", 9, "card declined")
    assert await harness.store.begin("storefront", "/svc/Pay", "k1", "h1") == Replay(
        b"", 9, "card declined"
    )


async def test_keys_are_scoped_by_caller_and_method(harness: Harness) -> None:
    await _start(harness)
    for caller, method in [("saas", "/svc/Pay"), ("storefront", "/svc/Refund")]:
        assert isinstance(await harness.store.begin(caller, method, "k1", "other"), Started)


async def test_the_same_key_with_another_request_is_refused(harness: Harness) -> None:
    record = await _start(harness)
    with pytest.raises(KeyReused):
        await harness.store.begin("storefront", "/svc/Pay", "k1", "h2")
    await harness.store.finish(record, b"r")
    with pytest.raises(KeyReused):
        await harness.store.begin("storefront", "/svc/Pay", "k1", "h2")


async def test_a_running_key_with_a_live_lease_is_in_progress(harness: Harness) -> None:
    await _start(harness)
    harness.clock.advance(LEASE_S - 1)
    with pytest.raises(InProgress):
        await harness.store.begin("storefront", "/svc/Pay", "k1", "h1")


async def test_an_expired_lease_is_taken_over_and_resumes_from_the_checkpoint(
    harness: Harness,
) -> None:
    first = await _start(harness)
    await first.checkpoint("charged", {"charge": "ch_1", "amount": 500})
    harness.clock.advance(LEASE_S + 1)  # the first attempt crashed and never finished
    outcome = await harness.store.begin("storefront", "/svc/Pay", "k1", "h1")
    assert isinstance(outcome, Started)
    second = outcome.record
    assert second.resumed
    assert second.recovery_point == "charged"
    assert second.recovery_data == {"charge": "ch_1", "amount": 500}
    assert second.stripe_key("charge") == first.stripe_key("charge")
    # The first attempt is fenced off: it can no longer write.
    with pytest.raises(LeaseLost):
        await first.checkpoint("refunded", {})
    with pytest.raises(LeaseLost):
        await harness.store.finish(first, b"late")
    await harness.store.finish(second, b"done")
    assert await harness.store.begin("storefront", "/svc/Pay", "k1", "h1") == Replay(b"done")


async def test_a_checkpoint_extends_the_lease(harness: Harness) -> None:
    record = await _start(harness)
    harness.clock.advance(LEASE_S - 1)
    await record.checkpoint("step-1", {})
    harness.clock.advance(LEASE_S - 1)  # past the first lease, within the renewed one
    with pytest.raises(InProgress):
        await harness.store.begin("storefront", "/svc/Pay", "k1", "h1")
    harness.clock.advance(2)
    outcome = await harness.store.begin("storefront", "/svc/Pay", "k1", "h1")
    assert isinstance(outcome, Started) and outcome.record.recovery_point == "step-1"


async def test_released_keys_resume_at_once(harness: Harness) -> None:
    record = await _start(harness)
    await record.checkpoint("charged", {"n": 1})
    assert await harness.store.release(record)
    outcome = await harness.store.begin("storefront", "/svc/Pay", "k1", "h1")
    assert isinstance(outcome, Started) and outcome.record.recovery_point == "charged"


async def test_abandoned_keys_are_forgotten(harness: Harness) -> None:
    record = await _start(harness)
    assert await harness.store.abandon(record)
    assert await harness.count() == 0
    # A corrected request may reuse the key.
    assert isinstance(await harness.store.begin("storefront", "/svc/Pay", "k1", "h2"), Started)
    assert not await harness.store.abandon(record)  # not the owner any more


async def test_expired_keys_count_as_absent_and_are_swept(harness: Harness) -> None:
    done = await _start(harness, "k-done")
    await harness.store.finish(done, b"r")
    await _start(harness, "k-running")  # its attempt crashed; the lease lapses
    await _start(harness, "k-young")
    harness.clock.advance(TTL_S - 10)
    young = await _start(harness, "k-young2")
    await harness.store.finish(young, b"y")
    harness.clock.advance(20)  # first three are past their TTL, k-young2 is not
    assert await harness.store.sweep() == 3
    assert await harness.count() == 1
    # The expired done key starts afresh, even with a different request.
    outcome = await harness.store.begin("storefront", "/svc/Pay", "k-done", "other")
    assert isinstance(outcome, Started) and not outcome.record.resumed
    assert await harness.store.begin("storefront", "/svc/Pay", "k-young2", "h1") == Replay(b"y")


async def test_expired_but_unswept_key_is_absent(harness: Harness) -> None:
    record = await _start(harness)
    await harness.store.finish(record, b"r")
    harness.clock.advance(TTL_S + 1)
    outcome = await harness.store.begin("storefront", "/svc/Pay", "k1", "different")
    assert isinstance(outcome, Started) and outcome.record.recovery_point is None


async def test_sweep_spares_a_running_record_that_holds_its_lease(harness: Harness) -> None:
    record = await _start(harness)
    harness.clock.advance(TTL_S - 1)
    await record.renew()
    harness.clock.advance(2)  # past the TTL but inside the renewed lease
    assert await harness.store.sweep() == 0
    harness.clock.advance(LEASE_S)
    assert await harness.store.sweep() == 1


async def test_concurrent_duplicates_start_exactly_once(harness: Harness) -> None:
    outcomes = await asyncio.gather(
        *(harness.store.begin("storefront", "/svc/Pay", "dup", "h1") for _ in range(20)),
        return_exceptions=True,
    )
    started = [o for o in outcomes if isinstance(o, Started)]
    assert len(started) == 1
    assert all(isinstance(o, InProgress) for o in outcomes if o is not started[0])


async def test_concurrent_takeovers_resume_exactly_once(harness: Harness) -> None:
    record = await _start(harness, "dup")
    await record.checkpoint("charged", {})
    harness.clock.advance(LEASE_S + 1)
    outcomes = await asyncio.gather(
        *(harness.store.begin("storefront", "/svc/Pay", "dup", "h1") for _ in range(10)),
        return_exceptions=True,
    )
    started = [o for o in outcomes if isinstance(o, Started)]
    assert len(started) == 1 and started[0].record.resumed
    assert all(isinstance(o, InProgress) for o in outcomes if o is not started[0])


@pytest.mark.parametrize("key", ["", "x" * 256, "bad\nkey"])
async def test_malformed_keys_are_refused(harness: Harness, key: str) -> None:
    with pytest.raises(InvalidKey):
        await harness.store.begin("storefront", "/svc/Pay", key, "h1")


async def test_the_sweeper_loop_sweeps(harness: Harness) -> None:
    if not isinstance(harness.store, IdempotencyStore):
        pytest.skip("run_sweeper belongs to the SQL store")
    record = await _start(harness)
    await harness.store.finish(record, b"r")
    harness.clock.advance(TTL_S + 1)
    sweeper = asyncio.create_task(harness.store.run_sweeper(interval_s=0.01))
    try:
        for _ in range(500):
            if await harness.count() == 0:
                break
            await asyncio.sleep(0.01)
        assert await harness.count() == 0
        assert not sweeper.done()  # it keeps looping until cancelled
    finally:
        sweeper.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sweeper


def test_stripe_keys_are_deterministic_and_distinct() -> None:
    key = derive_stripe_key("storefront", "/svc/Pay", "k1", "charge")
    assert key == derive_stripe_key("storefront", "/svc/Pay", "k1", "charge")
    assert key.startswith("pp1-") and len(key) <= 255
    others = {
        derive_stripe_key("storefront", "/svc/Pay", "k1", "refund"),
        derive_stripe_key("storefront", "/svc/Pay", "k2", "charge"),
        derive_stripe_key("saas", "/svc/Pay", "k1", "charge"),
        derive_stripe_key("storefront", "/svc/Refund", "k1", "charge"),
    }
    assert key not in others and len(others) == 4
    # Concatenation ambiguity does not collide.
    assert derive_stripe_key("a", "b", "cd", "e") != derive_stripe_key("a", "b", "c", "de")


async def test_current_is_bound_only_inside_the_block() -> None:
    store = InMemoryIdempotencyStore()
    outcome = await store.begin("c", "/m", "k", "h")
    assert isinstance(outcome, Started)
    assert current() is None
    with bind_current(outcome.record):
        assert current() is outcome.record
    assert current() is None


# -- recovery points in the caller's transaction -------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def joined(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """A store and the caller's own table in one database (what a service has)."""
    clock = FakeClock()
    if request.param == "sqlite":
        async for world in _joined_world(f"sqlite:///{tmp_path / 'joined.db'}", None, clock):
            yield world
        return
    pg_url = postgres_url()
    if pg_url is None:
        pytest.skip("TEST_POSTGRES_URL is not set; the PostgreSQL variant needs a server")
    async with postgres_schema(pg_url) as pg_schema:
        async for world in _joined_world(pg_url, pg_schema, clock):
            yield world


async def _joined_world(url: str, schema: str | None, clock: FakeClock) -> AsyncIterator[Any]:
    engine = create_engine(url, schema=schema)
    metadata = MetaData()
    table = idempotency_table(metadata)
    refunds = Table("refunds", metadata, Column("id", String(40), primary_key=True))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    sessions = session_factory(engine)
    store = IdempotencyStore(sessions, table, ttl_s=TTL_S, lease_s=LEASE_S, clock=clock)

    async def refund_ids() -> list[str]:
        async with sessions() as session:
            return list((await session.execute(select(refunds.c.id))).scalars())

    try:
        yield store, sessions, refunds, clock, refund_ids
    finally:
        await engine.dispose()


class _Crash(Exception):
    pass


async def test_a_joined_checkpoint_commits_with_the_callers_write(joined: Any) -> None:
    store, sessions, refunds, clock, refund_ids = joined
    outcome = await store.begin("storefront", "/svc/Refund", "k1", "h1")
    assert isinstance(outcome, Started)
    record = outcome.record
    async with sessions.begin() as session:
        await session.execute(insert(refunds).values(id="ref_1"))
        await record.checkpoint("refund_created", {"refund_id": "ref_1"}, session=session)
        assert record.recovery_point is None, "not before the transaction commits"
    assert record.recovery_point == "refund_created"
    assert record.recovery_data == {"refund_id": "ref_1"}
    clock.advance(LEASE_S + 1)  # the attempt dies; the next one resumes from the point
    resumed = await store.begin("storefront", "/svc/Refund", "k1", "h1")
    assert isinstance(resumed, Started)
    assert resumed.record.recovery_data == {"refund_id": "ref_1"}
    assert await refund_ids() == ["ref_1"]


async def test_a_joined_checkpoint_rolls_back_with_the_callers_write(joined: Any) -> None:
    store, sessions, refunds, clock, refund_ids = joined
    outcome = await store.begin("storefront", "/svc/Refund", "k1", "h1")
    assert isinstance(outcome, Started)
    record = outcome.record
    with pytest.raises(_Crash):
        async with sessions.begin() as session:
            await session.execute(insert(refunds).values(id="ref_1"))
            await record.checkpoint("refund_created", {"refund_id": "ref_1"}, session=session)
            raise _Crash("the attempt died before its commit")
    assert record.recovery_point is None
    assert await refund_ids() == []
    clock.advance(LEASE_S + 1)
    again = await store.begin("storefront", "/svc/Refund", "k1", "h1")
    assert isinstance(again, Started) and again.record.recovery_point is None
    # A later transaction on a reused session does not resurrect the rolled-back point.
    async with sessions() as session:
        async with session.begin():
            await session.execute(insert(refunds).values(id="ref_x"))
            with pytest.raises(LeaseLost):  # the first attempt was fenced off meanwhile
                await record.checkpoint("refund_created", {}, session=session)
        async with session.begin():
            await session.execute(insert(refunds).values(id="ref_y"))
    assert record.recovery_point is None


async def test_a_joined_checkpoint_of_a_fenced_attempt_refuses_its_transaction(
    joined: Any,
) -> None:
    store, sessions, refunds, clock, refund_ids = joined
    outcome = await store.begin("storefront", "/svc/Refund", "k1", "h1")
    assert isinstance(outcome, Started)
    stale = outcome.record
    clock.advance(LEASE_S + 1)
    taken = await store.begin("storefront", "/svc/Refund", "k1", "h1")
    assert isinstance(taken, Started)
    with pytest.raises(LeaseLost):
        async with sessions.begin() as session:
            await session.execute(insert(refunds).values(id="ref_stale"))
            await stale.checkpoint("refund_created", {"refund_id": "ref_stale"}, session=session)
    assert await refund_ids() == [], "the fenced attempt's effect rolled back with it"
