from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client, Server
from nats.js import JetStreamContext

from ._errors import NatsUnavailable

__all__ = ["ConnectHook", "NatsConnection", "NatsOptions", "connect_nats"]

log = logging.getLogger("payplane.natsconn")

# Runs after every (re)connection, before the connection counts as ready: declare streams,
# key-value buckets, consumers. It must be idempotent; a failure is retried with back-off.
ConnectHook = Callable[[JetStreamContext], Awaitable[None]]

_ERROR_LOG_EVERY_S = 30.0


@dataclass(frozen=True)
class NatsOptions:
    """How a NatsConnection connects. The defaults suit production; tests need not change them."""

    connect_timeout_s: float = 2.0
    # Back-off between reconnection attempts: exponential with jitter, from the first wait up
    # to the cap. The cap is also the period of retries while NATS is down at start-up.
    reconnect_wait_s: float = 0.25
    max_reconnect_wait_s: float = 2.0
    # A server that stops answering (frozen, partitioned) is noticed after about
    # ping_interval_s * (max_outstanding_pings + 1) instead of the client's default 6 min.
    ping_interval_s: float = 10.0
    max_outstanding_pings: int = 3
    drain_timeout_s: float = 5.0
    # How long `check()` waits for JetStream to answer.
    health_timeout_s: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.reconnect_wait_s <= self.max_reconnect_wait_s:
            raise ValueError("need 0 < reconnect_wait_s <= max_reconnect_wait_s")
        if min(self.connect_timeout_s, self.ping_interval_s, self.drain_timeout_s) <= 0:
            raise ValueError("timeouts and intervals must be > 0")


class NatsConnection:
    """A NATS connection that outlives NATS: see the package docstring."""

    def __init__(
        self,
        servers: str | Sequence[str],
        *,
        name: str,
        options: NatsOptions | None = None,
        on_connect: Sequence[ConnectHook] = (),
    ) -> None:
        self._servers = [servers] if isinstance(servers, str) else list(servers)
        self._name = name
        self._options = options or NatsOptions()
        self._hooks = list(on_connect)
        self._rng = random.Random()
        self.client = Client()
        self.jetstream: JetStreamContext = self.client.jetstream()
        self._ready = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._connect_task: asyncio.Task[None] | None = None
        self._closing = False
        self._errors_since_log = 0
        self._last_error_log = 0.0

    def __repr__(self) -> str:
        return f"NatsConnection(name={self._name!r}, ready={self.ready})"

    # -- state --------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return bool(self.client.is_connected)

    @property
    def ready(self) -> bool:
        """Connected, and every on_connect hook has run since the last (re)connection."""
        return self.connected and self._ready.is_set()

    async def check(self) -> bool:
        """For health: ready and JetStream answers within `health_timeout_s`."""
        if not self.ready:
            return False
        try:
            async with asyncio.timeout(self._options.health_timeout_s):
                await self.jetstream.account_info()
        except Exception:
            return False
        return True

    async def wait_ready(self, timeout_s: float | None = None) -> None:
        """Wait until `ready`; NatsUnavailable after `timeout_s` (None: for ever)."""
        try:
            async with asyncio.timeout(timeout_s):
                while not self.ready:
                    await self._ready.wait()
                    if not self.connected:  # ready was set, then the connection dropped
                        await asyncio.sleep(0.05)
        except TimeoutError:
            raise NatsUnavailable(
                f"NATS at {', '.join(self._servers)} not ready after {timeout_s}s"
            ) from None

    # -- life ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start connecting in the background (retrying for ever) and return at once."""
        if self._connect_task is None:
            self._connect_task = asyncio.create_task(self._connect(), name=f"nats-{self._name}")

    async def close(self) -> None:
        """Drain (when connected) and close. Never raises, whatever the connection's state:
        connected, reconnecting, never connected, or closed already."""
        if self._closing:
            return
        self._closing = True
        self._ready.clear()
        pending = [t for t in (self._connect_task, *self._tasks) if t is not None]
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        client = self.client
        try:
            if client.is_connected:
                async with asyncio.timeout(self._options.drain_timeout_s + 1):
                    await client.drain()
        except Exception as exc:
            log.warning("NATS drain for %s did not finish: %r; closing", self._name, exc)
        finally:
            if not client.is_closed:
                with contextlib.suppress(Exception):
                    await client.close()
        log.info("NATS connection for %s closed", self._name)

    async def _connect(self) -> None:
        try:
            await self._connect_once()
        except asyncio.CancelledError:
            raise
        except Exception:  # a bad URL or option: retrying cannot help, health stays down
            log.exception("NATS connection for %s cannot be made", self._name)

    async def _connect_once(self) -> None:
        o = self._options
        await self.client.connect(
            servers=self._servers,
            name=self._name,
            connect_timeout=o.connect_timeout_s,  # type: ignore[arg-type]
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            # Only the first connection uses this fixed wait; reconnections ask _next_server.
            reconnect_time_wait=o.max_reconnect_wait_s,  # type: ignore[arg-type]
            reconnect_to_server_handler=self._next_server,
            ping_interval=o.ping_interval_s,  # type: ignore[arg-type]
            max_outstanding_pings=o.max_outstanding_pings,
            drain_timeout=o.drain_timeout_s,  # type: ignore[arg-type]
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
            closed_cb=self._on_closed,
            lame_duck_mode_cb=self._on_lame_duck,
        )
        log.info("NATS connected for %s at %s", self._name, _url(self.client))
        await self._after_connect()

    def _next_server(self, servers: list[Server], _info: dict[str, Any]) -> tuple[Server, float]:
        """Reconnection back-off: the least-tried server, after a jittered exponential wait."""
        server = min(servers, key=lambda s: s.reconnects)
        o = self._options
        ceiling = min(o.max_reconnect_wait_s, o.reconnect_wait_s * 2 ** min(server.reconnects, 16))
        return server, ceiling / 2 + self._rng.random() * ceiling / 2

    async def _after_connect(self) -> None:
        attempt = 0
        while not self._closing:
            try:
                for hook in self._hooks:
                    await hook(self.jetstream)
            except Exception as exc:
                attempt += 1
                wait = min(self._options.max_reconnect_wait_s, 0.25 * 2**attempt)
                log.warning("NATS on-connect setup for %s failed: %r; retrying in %.1fs",
                            self._name, exc, wait)  # fmt: skip
                await asyncio.sleep(wait)
                continue
            if self.connected:
                self._ready.set()
            return

    # -- callbacks ----------------------------------------------------------------------------

    async def _on_error(self, exc: Exception) -> None:
        # During an outage every attempt fails: say so now and then, not 2 times a second.
        self._errors_since_log += 1
        now = time.monotonic()
        if now - self._last_error_log >= _ERROR_LOG_EVERY_S:
            log.warning("NATS error for %s (%d since the last report): %r",
                        self._name, self._errors_since_log, exc)  # fmt: skip
            self._errors_since_log = 0
            self._last_error_log = now

    async def _on_disconnected(self) -> None:
        self._ready.clear()
        if not self._closing:
            log.warning("NATS connection for %s lost; reconnecting", self._name)

    async def _on_reconnected(self) -> None:
        log.info("NATS reconnected for %s at %s", self._name, _url(self.client))
        self._errors_since_log = 0
        self._last_error_log = 0.0
        # Not awaited here: the client waits for this callback before it serves anything.
        task = asyncio.create_task(self._after_connect())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_closed(self) -> None:
        self._ready.clear()
        if not self._closing:
            log.error("NATS connection for %s closed for good", self._name)

    async def _on_lame_duck(self) -> None:
        log.info("NATS server of %s entering lame duck mode; will move", self._name)


def _url(client: Client) -> str:
    url = client.connected_url
    return url.netloc if url is not None else "?"


async def connect_nats(
    servers: str | Sequence[str],
    *,
    name: str,
    options: NatsOptions | None = None,
    on_connect: Sequence[ConnectHook] = (),
    timeout_s: float | None = None,
) -> NatsConnection:
    """A started NatsConnection, once ready (NatsUnavailable after `timeout_s`; None waits
    for ever): for tools and tests that cannot do anything without NATS."""
    conn = NatsConnection(servers, name=name, options=options, on_connect=on_connect)
    await conn.start()
    try:
        await conn.wait_ready(timeout_s)
    except NatsUnavailable:
        await conn.close()
        raise
    return conn
