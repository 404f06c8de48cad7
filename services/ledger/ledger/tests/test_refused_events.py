"""An envelope the ledger cannot tell the meaning of is refused, never guessed at: one from a
source it does not follow (it used to be booked as checkout's), or of a type its source does
not publish (it used to be acked as if it moved no money). The refusal is permanent: over a
real NATS server the consumer dead-letters it, naming the source and the type, books nothing
and claims nothing, and the events behind it are still booked."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from google.protobuf.message import Message
from nats.aio.client import Client
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledger.adapters import tables
from ledger.adapters.journal import Journal
from ledger.service import ingestion
from ledger.service.handlers import Ledger
from payplane.checkout.v1 import events_pb2
from payplane.common.v1 import common_pb2
from payplane.db import create_engine, session_factory
from payplane.events import (
    Consumer,
    Envelope,
    Inbox,
    MessageMeta,
    ensure_stream,
    new_envelope,
    publish_envelope,
)
from payplane.natsd.testing import nats_client, nats_server  # noqa: F401


def _paid(bt_id: str) -> events_pb2.PaymentSucceeded:
    usd = lambda v: common_pb2.Money(amount_minor=v, currency="usd")  # noqa: E731
    return events_pb2.PaymentSucceeded(
        payment_id=f"pay_{bt_id}",
        amount=usd(1_000),
        stripe_charge_id=f"ch_{bt_id}",
        settlement=events_pb2.Settlement(
            balance_transaction_id=bt_id, gross=usd(1_000), fee=usd(59), net=usd(941)
        ),
    )


def _envelope(type_: str, payload: Message, source: str = "checkout") -> Envelope:
    return new_envelope(type_, source, "pay_1", payload)


class NoBooks:
    async def charge_rate(self, payment_id: str) -> None:
        raise AssertionError("a refused envelope asks the books nothing")


async def test_an_envelope_from_a_source_the_ledger_does_not_follow_is_refused() -> None:
    foreign = _envelope("payment.succeeded", _paid("txn_foreign"), source="billing")
    with pytest.raises(Exception, match="billing") as refused:
        await ingestion.entries_for(foreign, NoBooks())
    assert "payment.succeeded" in str(refused.value)


async def test_a_type_its_source_does_not_publish_is_refused() -> None:
    odd = _envelope("payment.captured", _paid("txn_odd"))
    with pytest.raises(Exception, match=r"payment\.captured") as refused:
        await ingestion.entries_for(odd, NoBooks())
    assert "checkout" in str(refused.value)


async def test_types_checkout_publishes_that_move_no_money_book_nothing() -> None:
    for type_ in ("payment.failed", "dispute.opened", "dispute.closed"):
        assert await ingestion.entries_for(_envelope(type_, _paid("txn_x")), NoBooks()) == []


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(tables.metadata.create_all)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def test_a_refused_envelope_is_dead_lettered_naming_its_source_and_type(
    nats_client: Client,  # noqa: F811
    sessions: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    js = nats_client.jetstream()
    tag = secrets.token_hex(4)
    stream, prefix = f"REFUSED_{tag}", f"t{tag}.checkout"
    await ensure_stream(js, stream, [f"{prefix}.>"])
    ledger = Ledger(sessions, Inbox(tables.inbox))

    async def on_event(envelope: Envelope, meta: MessageMeta) -> None:
        await ledger.handle_event(envelope, "ledger-checkout")

    # The ledger's checkout consumer, redelivering quickly so the test need not wait.
    consumer = Consumer(
        js, stream, "ledger-checkout", f"{prefix}.payment.>", on_event,
        max_deliver=2, backoff_s=(0.05,), ack_wait_s=5,
    )  # fmt: skip
    await consumer.ensure()
    foreign = _envelope("payment.succeeded", _paid("txn_foreign"), source="billing")
    odd = _envelope("payment.captured", _paid("txn_odd"))
    good = _envelope("payment.succeeded", _paid("txn_good"))
    for envelope in (foreign, odd, good):
        await publish_envelope(js, f"{prefix}.{envelope.type}", envelope)

    dlq = await js.find_stream_name_by_subject(consumer.dead_letter_subject)
    caplog.set_level(logging.ERROR, logger="ledger")
    task = asyncio.create_task(consumer.run())
    try:
        deadline = time.monotonic() + 30
        while True:
            async with sessions() as session:
                booked = await Journal(session).is_booked("txn_good")
            info = await js.stream_info(dlq)
            dead = [await js.get_msg(dlq, seq) for seq in range(1, info.state.last_seq + 1)]
            dead = [m for m in dead if (m.headers or {}).get("Payplane-Dlq-Stream") == stream]
            if booked and len(dead) == 2:
                break
            assert time.monotonic() < deadline, (booked, len(dead))
            await asyncio.sleep(0.1)
    finally:
        consumer.stop()
        await task

    errors = {
        (m.headers or {})["Payplane-Original-Msg-Id"]: (m.headers or {})["Payplane-Dlq-Error"]
        for m in dead
    }
    assert set(errors) == {foreign.event_id, odd.event_id}, errors
    assert "'billing'" in errors[foreign.event_id], errors
    assert "'payment.succeeded'" in errors[foreign.event_id], errors
    assert "'checkout'" in errors[odd.event_id], errors
    assert "'payment.captured'" in errors[odd.event_id], errors
    async with sessions() as session:
        journal = Journal(session)
        assert not await journal.is_booked("txn_foreign")
        assert not await journal.exists(foreign.event_id) and not await journal.exists(odd.event_id)
        claimed = {r[0] for r in (await session.execute(select(tables.inbox.c.event_id))).all()}
    assert foreign.event_id not in claimed and odd.event_id not in claimed
    assert good.event_id in claimed
    logged = [r.getMessage() for r in caplog.records if r.name == "ledger"]
    assert any("'billing'" in m and "'payment.succeeded'" in m for m in logged), logged
    assert any("'checkout'" in m and "'payment.captured'" in m for m in logged), logged
