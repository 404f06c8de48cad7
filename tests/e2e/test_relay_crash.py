"""The outbox relay dies mid-batch (after publishing, before marking): after a restart
nothing is lost and nothing is booked twice."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from checkout.adapters import tables
from payplane.events import Relay, publish_bytes
from payplane.events import _relay as relay_module
from payplane.ledger.v1 import ledger_pb2

from .harness import Platform, eventually


class _Killed(BaseException):
    """The process died: not an Exception, so nothing on the way catches it."""


async def test_relay_killed_mid_batch_loses_and_duplicates_nothing(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = platform.checkout_app
    app.relay.stop()
    relay_task = next(t for t in app.tasks if t.get_name() == "checkout-relay")
    await asyncio.wait_for(relay_task, 10)

    paid = [await platform.pay(f"k-relay-{i}", amount=1_000 + i) for i in range(8)]
    assert await platform.balance("revenue") == 0, "nothing published while the relay is down"

    real_publish = publish_bytes  # what the relay module calls
    published = {"n": 0}

    async def publish_then_die(*args: Any, **kwargs: Any) -> Any:
        if published["n"] == 5:
            raise _Killed()
        published["n"] += 1
        return await real_publish(*args, **kwargs)

    js = app.nc.jetstream()
    monkeypatch.setattr(relay_module, "publish_bytes", publish_then_die)
    with pytest.raises(_Killed):
        await Relay(app.relay._session_factory, tables.outbox, js, batch_size=100).run_once()
    monkeypatch.setattr(relay_module, "publish_bytes", real_publish)
    assert published["n"] == 5, "five events reached JetStream; none was marked sent"

    restarted = Relay(app.relay._session_factory, tables.outbox, js, batch_size=100)
    task = asyncio.create_task(restarted.run())
    try:
        expected = sum(p.amount.amount_minor for p in paid)
        await eventually(lambda: platform.balance("revenue"), lambda v: v == -expected)
        info = await js.stream_info("CHECKOUT")
        assert info.state.messages == len(paid), "the re-published five were dropped as dupes"
        ledger = platform.ledger()
        for p in paid:
            entries = await ledger.ListEntries(ledger_pb2.ListEntriesRequest(source_id=p.id))
            assert len(entries.entries) == 1
    finally:
        restarted.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task
