"""grpc.health.v1 follows the service's dependencies: NOT_SERVING while one fails."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2

from payplane.grpckit import LIVENESS, HealthMonitor, create_server, drain, set_serving
from payplane.grpckit.testing import (
    ECHO_SERVICE,
    EchoServicer,
    echo_auth,
    echo_service,
    health_status,
)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def test_the_monitor_follows_its_checks_and_yields_to_a_drain() -> None:
    server, port = await create_server(
        services=[echo_service(EchoServicer())], service_names=[ECHO_SERVICE], auth=echo_auth()
    )
    nats_up = True

    async def nats() -> bool:
        return nats_up

    async def database() -> bool:
        return True

    async def broken() -> bool:
        raise ConnectionError("nobody home")

    monitor = HealthMonitor(server, {"nats": nats, "database": database})
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            assert await monitor.check_once()
            assert await health_status(ch, ECHO_SERVICE) == SERVING
            nats_up = False
            assert not await monitor.check_once()
            assert monitor.failing == ("nats",)
            assert await health_status(ch, ECHO_SERVICE) == NOT_SERVING
            assert await health_status(ch) == NOT_SERVING
            assert await health_status(ch, LIVENESS) == SERVING  # no reason to restart it
            nats_up = True
            assert await monitor.check_once()
            assert await health_status(ch) == SERVING

            raising = HealthMonitor(server, {"broken": broken})
            assert not await raising.check_once()
            await set_serving(server, True)

            await drain(server, grace_s=0.5)
            await monitor.check_once()  # a drained server ignores it
    finally:
        await server.stop(None)
