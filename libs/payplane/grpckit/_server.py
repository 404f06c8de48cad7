from __future__ import annotations

import asyncio
import importlib
import logging
import signal
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry import trace

from payplane.idempotency import IdempotencyBackend

from ._auth import CallerAuth
from ._pipeline import PayplaneInterceptor
from .errors import STATUS_BY_ERROR

__all__ = [
    "LIVENESS",
    "ConfigurationError",
    "GrpcKitError",
    "ServerHealth",
    "create_server",
    "drain",
    "serve",
    "server_health",
]

log = logging.getLogger("payplane.grpckit")

AddServicer = Callable[[Any, grpc.aio.Server], None]

# A health "service" that is SERVING while the process runs (NOT_SERVING once it drains),
# whatever its dependencies: for liveness and startup probes. "" and the service names are
# readiness, which HealthMonitor turns NOT_SERVING while a dependency is away.
LIVENESS = "liveness"


class GrpcKitError(Exception):
    """Base of payplane.grpckit's own (non-domain) errors."""


class ConfigurationError(GrpcKitError):
    """create_server was given an inconsistent configuration, or could not bind its port."""


class _AsyncHealth(Protocol):
    async def set(
        self, service: str, status: health_pb2.HealthCheckResponse.ServingStatus
    ) -> None: ...

    async def enter_graceful_shutdown(self) -> None: ...


@dataclass
class ServerHealth:
    """A server's grpc.health.v1 servicer and the services it reports on."""

    servicer: _AsyncHealth
    service_names: tuple[str, ...]


_STATE: weakref.WeakKeyDictionary[grpc.aio.Server, ServerHealth] = weakref.WeakKeyDictionary()


def server_health(server: grpc.aio.Server) -> ServerHealth | None:
    """The health state of a server made by `create_server` (None for any other server)."""
    return _STATE.get(server)


def _async_health_servicer() -> _AsyncHealth:
    # grpcio-health-checking ships the asyncio servicer as grpc_health.v1._async (exposed as
    # health.aio), which its type stubs do not declare.
    module: Any = importlib.import_module("grpc_health.v1._async")
    return cast(_AsyncHealth, module.HealthServicer())


async def create_server(
    *,
    services: Sequence[tuple[AddServicer, object]],
    service_names: Iterable[str],
    auth: CallerAuth,
    idempotency: IdempotencyBackend | None = None,
    mutating_methods: Iterable[str] = (),
    port: int = 0,
    host: str = "127.0.0.1",
    deadline_floor_s: float = 0.05,
    default_deadline_s: float = 10.0,
    max_deadline_s: float = 60.0,
    error_table: Mapping[type[BaseException], grpc.StatusCode] | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    options: Sequence[tuple[str, Any]] = (),
) -> tuple[grpc.aio.Server, int]:
    """A started grpc.aio server with payplane's interceptor chain, health and reflection.

    `services` pairs each generated `add_XServicer_to_server` with its servicer;
    `service_names` are their full names ("payplane.checkout.v1.CheckoutService"), reported
    SERVING by grpc.health.v1 (and `LIVENESS`, which dependency checks never touch) and
    listed by reflection. `mutating_methods` are full method
    names ("/payplane.checkout.v1.CheckoutService/CreatePayment") that require an
    idempotency-key. `error_table` adds to (or overrides) errors.STATUS_BY_ERROR.
    Returns the server and the port it listens on (pass port=0 to pick a free one).
    """
    names = tuple(service_names)
    mutating = frozenset(mutating_methods)
    if mutating and idempotency is None:
        raise ConfigurationError("mutating_methods need an idempotency store")
    if bad := sorted(m for m in mutating if not m.startswith("/") or m.count("/") != 2):
        raise ConfigurationError(f"mutating methods must be full names like /pkg.Svc/M: {bad}")
    if not 0 < deadline_floor_s < max_deadline_s or default_deadline_s <= 0:
        raise ConfigurationError("need 0 < deadline_floor_s < max_deadline_s, default > 0")
    interceptor = PayplaneInterceptor(
        auth=auth,
        idempotency=idempotency,
        mutating_methods=mutating,
        deadline_floor_s=deadline_floor_s,
        default_deadline_s=default_deadline_s,
        max_deadline_s=max_deadline_s,
        error_table={**STATUS_BY_ERROR, **(error_table or {})},
        tracer=trace.get_tracer("payplane.grpckit", tracer_provider=tracer_provider),
    )
    server = grpc.aio.server(interceptors=[interceptor], options=list(options))
    for add, servicer in services:
        add(servicer, server)
    health_servicer = _async_health_servicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *names, LIVENESS):  # "" is the server as a whole
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (*names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    bound = server.add_insecure_port(address)
    if bound == 0:
        raise ConfigurationError(f"could not listen on {address}")
    await server.start()
    _STATE[server] = ServerHealth(health_servicer, names)
    log.info("gRPC server listening on %s:%d (%s)", host, bound, ", ".join(names))
    return server, bound


async def drain(server: grpc.aio.Server, grace_s: float = 10.0) -> None:
    """Report NOT_SERVING, refuse new RPCs, let in-flight ones finish within `grace_s`."""
    state = _STATE.get(server)
    if state is not None:
        # Load balancers and kubelet probes see NOT_SERVING and route elsewhere.
        await state.servicer.enter_graceful_shutdown()
    log.info("draining gRPC server (grace %.1fs)", grace_s)
    await server.stop(grace_s)


async def serve(
    server: grpc.aio.Server,
    grace_s: float = 10.0,
    *,
    signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
) -> None:
    """Run until the server stops; SIGTERM or SIGINT drains it gracefully first."""
    loop = asyncio.get_running_loop()
    draining: list[asyncio.Task[None]] = []

    def on_signal(signum: signal.Signals) -> None:
        log.info("received %s", signum.name)
        if not draining:
            draining.append(loop.create_task(drain(server, grace_s)))

    for signum in signals:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await server.wait_for_termination()
        if draining:
            await draining[0]
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
    log.info("gRPC server stopped")
