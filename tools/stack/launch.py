"""Start `python -m stack` on free ports with its own run directory (benchmarks, tools).

with launched_stack(Path(tmp)) as state:   # the stack.json of the running stack
    state["services"]["checkout"]["grpc"]

async with launched_stack_async(Path(tmp)) as state:   # the same, the event loop kept free
    ...
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from .config import CONSOLE_PORT, EMULATOR_PORT, NATS_PORT, SERVICES

__all__ = ["free_ports_env", "launched_stack", "launched_stack_async"]

_AVOID = {4222, NATS_PORT.default, EMULATOR_PORT.default, CONSOLE_PORT.default} | {
    p.default for s in SERVICES for p in (s.grpc_port, s.webhook_port) if p is not None
}


def _free_port(taken: set[int]) -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port not in _AVOID and port not in taken:
            taken.add(port)
            return port


def free_ports_env(run_dir: Path) -> dict[str, str]:
    """This environment with every stack port on a free one and `run_dir` as run directory."""
    env = {k: v for k, v in os.environ.items() if k != "NATS_URL" and not k.startswith("PAYPLANE_")}
    taken: set[int] = set()
    env[NATS_PORT.var] = str(_free_port(taken))
    env[EMULATOR_PORT.var] = str(_free_port(taken))
    env[CONSOLE_PORT.var] = str(_free_port(taken))
    for spec in SERVICES:
        for setting in (spec.grpc_port, spec.webhook_port):
            if setting is not None:
                env[setting.var] = str(_free_port(taken))
    env["PAYPLANE_RUN_DIR"] = str(run_dir)
    return env


@contextlib.contextmanager
def launched_stack(
    run_dir: Path, extra_env: dict[str, str] | None = None, timeout_s: float = 120.0
) -> Iterator[dict[str, Any]]:
    """Run the stack until the block ends; yields its stack.json once every part is healthy.

    `extra_env` reaches the services too (the stack passes its environment through)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    log = (run_dir / "stack.out").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "stack", "--fresh"],
        env={**free_ports_env(run_dir), "PAYPLANE_LOG_LEVEL": "WARNING", **(extra_env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    state_file = run_dir / "stack.json"
    try:
        deadline = time.monotonic() + timeout_s
        while not state_file.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "the stack did not come up:\n" + (run_dir / "stack.out").read_text()[-3000:]
                )
            time.sleep(0.1)
        state: dict[str, Any] = json.loads(state_file.read_text())
        yield state
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


@contextlib.asynccontextmanager
async def launched_stack_async(
    run_dir: Path, extra_env: dict[str, str] | None = None, timeout_s: float = 120.0
) -> AsyncIterator[dict[str, Any]]:
    """`launched_stack` started and stopped in a thread: whatever serves on this event loop
    (an OTLP collector the services export to, say) keeps serving while the stack comes up
    and while it stops."""
    stack = launched_stack(run_dir, extra_env, timeout_s)
    state = await asyncio.to_thread(stack.__enter__)
    try:
        yield state
    finally:
        await asyncio.to_thread(stack.__exit__, None, None, None)
