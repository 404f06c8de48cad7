from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from payplane.grpckit import channel
from payplane.grpckit.testing import EchoClient

SCRIPT = Path(__file__).with_name("drain_server.py")


async def _line(stream: asyncio.StreamReader | None) -> str:
    assert stream is not None
    return (await asyncio.wait_for(stream.readline(), timeout=60)).decode().strip()


async def test_sigterm_drains_and_the_in_flight_call_completes() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        first = await _line(proc.stdout)
        assert first.startswith("port "), first
        port = int(first.split()[1])
        async with channel(f"127.0.0.1:{port}", "tok-storefront") as ch:
            call = asyncio.ensure_future(EchoClient(ch).echo("until-drained", timeout=60))
            assert await _line(proc.stdout) == "in-flight"
            proc.send_signal(signal.SIGTERM)
            reply = await call
        assert reply.message == "drained"
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode == 0, stderr.decode()
        assert stdout.decode().split() == ["stopped"]
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
