"""A server process for the SIGTERM test: `python drain_server.py` prints its port, serves
until SIGTERM, drains, prints "stopped". Echo("until-drained") answers only once the server
reports NOT_SERVING (or stops answering), so it is in flight for the whole drain."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

from payplane.grpckit import create_server, serve
from payplane.grpckit.testing import (
    ECHO_SERVICE,
    EchoServicer,
    echo_auth,
    echo_service,
    health_status,
)
from payplane.testing.v1 import echo_pb2


class DrainAwareServicer(EchoServicer):
    port = 0

    async def Echo(self, request: echo_pb2.EchoRequest, context: Any) -> echo_pb2.EchoReply:
        if request.message != "until-drained":
            return await super().Echo(request, context)
        print("in-flight", flush=True)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.port}") as probe:
            for _ in range(3000):
                try:
                    if await health_status(probe) != health_pb2.HealthCheckResponse.SERVING:
                        return echo_pb2.EchoReply(message="drained")
                except grpc.aio.AioRpcError:
                    return echo_pb2.EchoReply(message="drained")
                await asyncio.sleep(0.01)
        return echo_pb2.EchoReply(message="never drained")


async def main() -> None:
    servicer = DrainAwareServicer()
    server, port = await create_server(
        services=[echo_service(servicer)], service_names=[ECHO_SERVICE], auth=echo_auth()
    )
    servicer.port = port
    print(f"port {port}", flush=True)
    await serve(server, grace_s=30)
    print("stopped", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
