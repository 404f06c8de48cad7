"""A NATS connection that outlives NATS: outages, a server down at start, a lost store."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import nats
import pytest
from nats.js import JetStreamContext

from payplane.events import ensure_stream, publish_bytes
from payplane.events.testing import eventually
from payplane.natsconn import NatsConnection, NatsUnavailable, connect_nats
from payplane.natsd import NatsServer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def _server(tmp_path: Path, port: int = 0) -> AsyncIterator[NatsServer]:
    server = await NatsServer(port=port, store_dir=tmp_path / "store").start()
    try:
        yield server
    finally:
        await server.stop()


async def _eventually(check: Callable[[], Awaitable[bool]]) -> None:
    await eventually(check, timeout_s=30)


async def test_an_outage_longer_than_the_clients_default_budget_is_survived(
    tmp_path: Path,
) -> None:
    """Defect 3. The client's defaults give up after 60 attempts; with waits of 0.05 s that
    budget is 3 s here (2 minutes in production). The connection rides out a longer outage."""
    async with _server(tmp_path) as server:
        conn = await connect_nats(server.url, name="test", timeout_s=10)
        # The old way, with its budget shrunk so the test sees it run out.
        old = await nats.connect(server.url, reconnect_time_wait=0.05)
        try:
            await ensure_stream(conn.jetstream, "OUT", ["out.>"])
            await server.stop()

            async def old_gave_up() -> bool:
                return bool(old.is_closed)

            await _eventually(old_gave_up)
            assert not conn.connected and not await conn.check()
            await server.start()

            async def back() -> bool:
                return await conn.check()

            await _eventually(back)
            ack = await publish_bytes(conn.jetstream, "out.x", b"after", msg_id="after-1")
            assert ack.stream == "OUT"
        finally:
            await conn.close()
            await old.close()


async def test_nats_down_at_start_is_waited_for(tmp_path: Path) -> None:
    port = _free_port()
    conn = NatsConnection(f"nats://127.0.0.1:{port}", name="early")
    await conn.start()  # returns although nothing listens yet
    try:
        with pytest.raises(NatsUnavailable):
            await conn.wait_ready(0.5)
        assert not await conn.check()
        async with _server(tmp_path, port):
            await conn.wait_ready(30)
            assert await conn.check()
    finally:
        await conn.close()


async def test_on_connect_hooks_run_again_after_a_server_lost_its_store(tmp_path: Path) -> None:
    """A server replaced by one with an empty store gets the streams back on reconnect."""
    calls: list[str] = []

    async def declare(js: JetStreamContext) -> None:
        calls.append("declare")
        await ensure_stream(js, "HOOKED", ["hooked.>"])

    async with _server(tmp_path) as first:
        port = first.port
        conn = await connect_nats(first.url, name="hooks", on_connect=[declare], timeout_s=10)
    try:
        assert calls == ["declare"]
        fresh = await NatsServer(port=port, store_dir=tmp_path / "other-store").start()
        try:

            async def redeclared() -> bool:
                return conn.ready and len(calls) >= 2

            await _eventually(redeclared)
            ack = await publish_bytes(conn.jetstream, "hooked.x", b"1", msg_id="h-1")
            assert ack.stream == "HOOKED"
        finally:
            await fresh.stop()
    finally:
        await conn.close()


async def test_close_never_raises(tmp_path: Path) -> None:
    """Defect 3: shutdown crashed in drain() on a closed or reconnecting connection."""
    never = NatsConnection(f"nats://127.0.0.1:{_free_port()}", name="never")
    await never.start()
    await never.close()  # still trying its first connection

    async with _server(tmp_path) as server:
        conn = await connect_nats(server.url, name="down", timeout_s=10)
        await server.stop()

        async def disconnected() -> bool:
            return not conn.connected

        await _eventually(disconnected)
        await conn.close()  # reconnecting
        await conn.close()  # closed already
        assert conn.client.is_closed

    async with _server(tmp_path) as server:
        up = await connect_nats(server.url, name="up", timeout_s=10)
        await up.close()  # the normal drain
        assert up.client.is_closed
