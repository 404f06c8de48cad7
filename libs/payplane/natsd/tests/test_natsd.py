from __future__ import annotations

import asyncio
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client

from payplane.natsd import NatsServer, NatsServerError, start_nats_server


async def test_session_server_serves_jetstream_off_the_default_port(
    nats_server: NatsServer, nats_client: Client
) -> None:
    assert nats_server.port != 4222
    assert nats_server.url == f"nats://127.0.0.1:{nats_server.port}"
    info = await nats_client.jetstream().account_info()
    assert info.limits is not None


async def test_context_manager_starts_and_stops(tmp_path: Path) -> None:
    async with start_nats_server(store_dir=tmp_path / "js") as server:
        assert server.running
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["s.>"])
        ack = await js.publish("s.x", b"1")
        assert ack.seq == 1
        await nc.close()
    assert not server.running
    # A caller's store_dir is theirs: it survives stop().
    assert (tmp_path / "js" / "jetstream").is_dir()


async def test_killed_server_restarts_on_the_same_port_with_its_data() -> None:
    server = await start_nats_server().start()
    try:
        port = server.port
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await js.add_stream(name="K", subjects=["k.>"])
        await js.publish("k.1", b"kept")
        await nc.close()

        server.kill()
        assert not server.running
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)

        await server.start()
        assert server.port == port
        nc = await nats.connect(server.url)
        msg = await nc.jetstream().get_last_msg("K", "k.1")
        assert msg.data == b"kept"
        await nc.close()
    finally:
        await server.stop()


async def test_explicit_port_in_use_fails_with_a_clear_error(nats_server: NatsServer) -> None:
    with pytest.raises(NatsServerError, match=r"exited|not ready"):
        await NatsServer(port=nats_server.port, ready_timeout_s=5).start()


def test_missing_binary_is_reported(tmp_path: Path) -> None:
    with pytest.raises((NatsServerError, OSError)):
        NatsServer(binary=tmp_path / "no-such-nats-server").start_sync()
