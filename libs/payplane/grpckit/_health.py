from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

import grpc
from grpc_health.v1 import health_pb2

from ._server import server_health

__all__ = ["HealthCheck", "HealthMonitor", "set_serving"]

log = logging.getLogger("payplane.grpckit.health")

# True while a dependency the service needs to do its job answers.
HealthCheck = Callable[[], Awaitable[bool]]

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def set_serving(server: grpc.aio.Server, serving: bool) -> None:
    """Report SERVING or NOT_SERVING through grpc.health.v1, for the server ("") and each of
    its services. Ignored once the server drains (it stays NOT_SERVING)."""
    health = server_health(server)
    if health is None:
        raise ValueError("not a server made by payplane.grpckit.create_server")
    status = _SERVING if serving else _NOT_SERVING
    for name in ("", *health.service_names):
        await health.servicer.set(name, status)


class HealthMonitor:
    """Runs named checks every `interval_s` and reports NOT_SERVING while any fails (or does
    not answer within `timeout_s`), SERVING again once all pass. A check that raises counts
    as failing. Changes are logged (WARNING naming the failing checks, INFO on recovery).

        monitor = HealthMonitor(server, {"nats": conn.check, "database": db_check(engine)})
        await monitor.check_once()          # before taking traffic
        task = asyncio.create_task(monitor.run())
    """

    def __init__(
        self,
        server: grpc.aio.Server,
        checks: Mapping[str, HealthCheck],
        *,
        interval_s: float = 1.0,
        timeout_s: float = 5.0,
    ) -> None:
        if interval_s <= 0 or timeout_s <= 0:
            raise ValueError("interval_s and timeout_s must be > 0")
        self._server = server
        self._checks = dict(checks)
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self.serving: bool | None = None  # None until the first round
        self.failing: tuple[str, ...] = ()

    async def _passes(self, check: HealthCheck) -> bool:
        try:
            async with asyncio.timeout(self._timeout_s):
                return bool(await check())
        except Exception:
            return False

    async def check_once(self) -> bool:
        """One round of checks; updates the reported status and returns it."""
        names = list(self._checks)
        results = await asyncio.gather(*(self._passes(self._checks[n]) for n in names))
        failing = tuple(n for n, ok in zip(names, results, strict=True) if not ok)
        serving = not failing
        if serving != self.serving or failing != self.failing:
            if serving:
                log.info("health: SERVING (%s answer)", ", ".join(names) or "no checks")
            else:
                log.warning("health: NOT_SERVING (%s not answering)", ", ".join(failing))
        self.serving, self.failing = serving, failing
        await set_serving(self._server, serving)
        return serving

    async def run(self) -> None:
        """Check every `interval_s` until cancelled."""
        while True:
            await self.check_once()
            await asyncio.sleep(self._interval_s)
