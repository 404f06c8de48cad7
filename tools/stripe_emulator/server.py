"""Running the emulator: in the current event loop, or in a thread for synchronous tests."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from .app import EmulatorApp
from .config import Config

__all__ = ["RunningEmulator", "ThreadedEmulator", "serve"]


@dataclass
class RunningEmulator:
    app: EmulatorApp
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextlib.asynccontextmanager
async def serve(
    config: Config | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    store_path: str | None = None,
) -> AsyncIterator[RunningEmulator]:
    """Serve on host:port (0 picks a free port) until the context exits."""
    emulator = EmulatorApp(config, store_path)
    runner = web.AppRunner(emulator.build(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
    await site.start()
    bound = port
    for addr in runner.addresses:  # the real port when 0 asked for a free one
        bound = addr[1]
        break
    try:
        yield RunningEmulator(emulator, host, bound)
    finally:
        await runner.cleanup()


class ThreadedEmulator:
    """The emulator on its own event loop in a daemon thread (for sync tests and the SDK)."""

    def __init__(
        self,
        config: Config | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        store_path: str | None = None,
    ) -> None:
        self._config = config
        self._store_path = store_path
        self._host = host
        self._port = port
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.running: RunningEmulator | None = None

    def start(self) -> RunningEmulator:
        self._thread = threading.Thread(target=self._main, name="stripe-emulator", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise RuntimeError("the emulator failed to start") from self._error
        assert self.running is not None
        return self.running

    def _main(self) -> None:
        async def run() -> None:
            self._stop = asyncio.Event()
            self._loop = asyncio.get_running_loop()
            try:
                async with serve(self._config, self._host, self._port, self._store_path) as running:
                    self.running = running
                    self._ready.set()
                    await self._stop.wait()
            except BaseException as exc:
                self._error = exc
                self._ready.set()

        asyncio.run(run())

    def call(self, fn: object, *args: object) -> object:
        """Run fn(*args) on the emulator's loop (state is only touched from there)."""
        assert self._loop is not None

        async def wrapper() -> object:
            return fn(*args)  # type: ignore[operator]

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(30)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(30)
