"""Idempotent RPCs end to end: real grpc.aio channels, the SQL store on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from sqlalchemy import MetaData, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from payplane.db import create_engine, session_factory
from payplane.db.testing import TestDatabase, db_url_fixture
from payplane.grpckit import REPLAYED, channel, create_server, idempotency_metadata
from payplane.grpckit.testing import (
    ECHO_SERVICE,
    MUTATE,
    Behaviour,
    EchoClient,
    EchoServicer,
    echo_auth,
    echo_service,
)
from payplane.idempotency import IdempotencyStore, Started, idempotency_table
from payplane.idempotency.testing import FakeClock

db_url = db_url_fixture()
LEASE_S = 30.0
TTL_S = 3600.0


@dataclass
class Env:
    client: EchoClient
    servicer: EchoServicer
    store: IdempotencyStore
    clock: FakeClock
    engine: AsyncEngine
    table: Any

    async def rows(self) -> int:
        async with self.engine.connect() as conn:
            count = await conn.execute(select(func.count()).select_from(self.table))
            return int(count.scalar_one())


@pytest.fixture
async def env(db_url: TestDatabase) -> AsyncIterator[Env]:
    engine = create_engine(db_url.url, schema=db_url.schema)
    metadata = MetaData()
    table = idempotency_table(metadata)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    clock = FakeClock()
    store = IdempotencyStore(
        session_factory(engine), table, ttl_s=TTL_S, lease_s=LEASE_S, clock=clock
    )
    servicer = EchoServicer()
    server, port = await create_server(
        services=[echo_service(servicer)],
        service_names=[ECHO_SERVICE],
        auth=echo_auth(),
        idempotency=store,
        mutating_methods={MUTATE},
    )
    try:
        async with channel(f"127.0.0.1:{port}", "tok-storefront") as ch:
            yield Env(EchoClient(ch), servicer, store, clock, engine, table)
    finally:
        await server.stop(None)
        await engine.dispose()


async def _failure(call: Any) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    metadata: Any = err.value.trailing_metadata()
    trailing = {k: v for k, v in (metadata or ()) if isinstance(v, str)}
    return err.value.code(), err.value.details() or "", trailing


async def _trailing(call: Any) -> dict[str, str]:
    metadata: Any = await call.trailing_metadata()
    return {k: v for k, v in (metadata or ()) if isinstance(v, str)}


async def test_a_mutating_call_without_a_key_is_invalid(env: Env) -> None:
    code, details, _ = await _failure(env.client.mutate("acct", 100))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "idempotency-key" in details
    assert env.servicer.calls == 0


async def test_the_same_key_twice_executes_once_and_replays(env: Env) -> None:
    first = env.client.mutate("acct", 100, metadata=idempotency_metadata("k1"))
    reply = await first
    assert REPLAYED not in await _trailing(first)
    second = env.client.mutate("acct", 100, metadata=idempotency_metadata("k1"))
    assert await second == reply
    assert (await _trailing(second))[REPLAYED] == "true"
    assert env.servicer.charges == [("acct", 100)] and env.servicer.calls == 1
    # Another key is another operation.
    await env.client.mutate("acct", 100, metadata=idempotency_metadata("k2"))
    assert len(env.servicer.charges) == 2


async def test_concurrent_duplicates_execute_once(env: Env) -> None:
    calls = [
        env.client.mutate("acct", 100, metadata=idempotency_metadata("dup")) for _ in range(10)
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    replies = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(replies) + len(refused) == 10
    assert replies and all(r == replies[0] for r in replies)
    assert all(e.code() == grpc.StatusCode.ABORTED for e in refused)
    assert env.servicer.charges == [("acct", 100)] and env.servicer.calls == 1


async def test_a_duplicate_while_the_first_runs_is_aborted(env: Env) -> None:
    first = asyncio.ensure_future(
        env.client.mutate("acct", 100, Behaviour.WAIT, metadata=idempotency_metadata("k"))
    )
    await env.servicer.started.wait()
    duplicates = [
        env.client.mutate("acct", 100, Behaviour.WAIT, metadata=idempotency_metadata("k"))
        for _ in range(5)
    ]
    outcomes = await asyncio.gather(*(_failure(d) for d in duplicates))
    assert {code for code, _, _ in outcomes} == {grpc.StatusCode.ABORTED}
    env.servicer.release.set()
    reply = await first
    assert reply.balance_minor == 100 and env.servicer.calls == 1
    again = env.client.mutate("acct", 100, Behaviour.WAIT, metadata=idempotency_metadata("k"))
    assert await again == reply


async def test_a_different_request_under_the_same_key_is_invalid(env: Env) -> None:
    await env.client.mutate("acct", 100, metadata=idempotency_metadata("k"))
    code, details, _ = await _failure(
        env.client.mutate("acct", 999, metadata=idempotency_metadata("k"))
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "different request" in details
    assert env.servicer.charges == [("acct", 100)]


async def test_a_crash_after_the_charge_resumes_without_charging_again(env: Env) -> None:
    key = idempotency_metadata("crash")
    code, details, _ = await _failure(
        env.client.mutate("acct", 100, Behaviour.CRASH_AFTER_CHARGE, metadata=key)
    )
    assert code == grpc.StatusCode.INTERNAL and "error id" in details
    assert env.servicer.charges == [("acct", 100)]
    retry = await env.client.mutate("acct", 100, Behaviour.CRASH_AFTER_CHARGE, metadata=key)
    assert retry.balance_minor == 100
    assert env.servicer.charges == [("acct", 100)] and env.servicer.calls == 2
    # Done now: a third attempt replays.
    third = env.client.mutate("acct", 100, Behaviour.CRASH_AFTER_CHARGE, metadata=key)
    assert await third == retry and (await _trailing(third))[REPLAYED] == "true"


async def test_a_dead_process_lease_is_taken_over_after_it_expires(env: Env) -> None:
    request_hash = _hash_of("acct", 100)
    # Another replica charged, checkpointed, and died without finishing or releasing.
    outcome = await env.store.begin("storefront", MUTATE, "orphan", request_hash)
    assert isinstance(outcome, Started)
    await outcome.record.checkpoint("charged", {"balance": 100})
    key = idempotency_metadata("orphan")
    code, _, _ = await _failure(env.client.mutate("acct", 100, metadata=key))
    assert code == grpc.StatusCode.ABORTED  # its lease still holds
    env.clock.advance(LEASE_S + 1)
    reply = await env.client.mutate("acct", 100, metadata=key)
    assert reply.balance_minor == 100 and env.servicer.charges == []
    assert reply.stripe_key == outcome.record.stripe_key("charge")


async def test_a_refusal_before_any_side_effect_frees_the_key(env: Env) -> None:
    key = idempotency_metadata("k")
    code, _, trailing = await _failure(
        env.client.mutate("acct", 100, Behaviour.INVALID, metadata=key)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and REPLAYED not in trailing
    assert await env.rows() == 0
    # The caller fixes the request and retries with the same key.
    reply = await env.client.mutate("acct", 100, metadata=key)
    assert reply.balance_minor == 100


async def test_a_refusal_after_a_side_effect_is_stored_and_replayed(env: Env) -> None:
    key = idempotency_metadata("k")
    first = await _failure(
        env.client.mutate("acct", 100, Behaviour.DECLINE_AFTER_CHARGE, metadata=key)
    )
    again = await _failure(
        env.client.mutate("acct", 100, Behaviour.DECLINE_AFTER_CHARGE, metadata=key)
    )
    assert (
        first[:2]
        == again[:2]
        == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "card declined after authorisation",
        )
    )
    assert again[2][REPLAYED] == "true"
    assert env.servicer.calls == 1 and env.servicer.charges == [("acct", 100)]


async def test_expired_keys_are_swept_and_count_as_new(env: Env) -> None:
    key = idempotency_metadata("k")
    await env.client.mutate("acct", 100, metadata=key)
    env.clock.advance(TTL_S + 1)
    assert await env.store.sweep() == 1
    assert await env.rows() == 0
    # Any request may use the key again: it is a new operation.
    reply = await env.client.mutate("acct", 50, metadata=key)
    assert reply.balance_minor == 150 and len(env.servicer.charges) == 2


def _hash_of(account: str, amount: int) -> str:
    import hashlib

    from payplane.testing.v1 import echo_pb2

    request = echo_pb2.MutateRequest(account=account, amount_minor=amount)
    return hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()
