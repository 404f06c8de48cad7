"""ledger's composition root."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncEngine

from payplane.db import create_engine, ping, run_migrations, session_factory
from payplane.events import (
    Consumer,
    Envelope,
    EventsWatch,
    Inbox,
    MessageMeta,
    ensure_stream,
    run_housekeeping,
)
from payplane.grpckit import CallerAuth, HealthMonitor, PageTokens, create_server, drain
from payplane.idempotency import IdempotencyStore
from payplane.ledger.v1 import ledger_pb2_grpc
from payplane.natsconn import NatsConnection, NatsUnavailable
from payplane.stripe_gateway import GatewayConfig, StripeGateway

from .adapters import tables
from .adapters.stripe_reader import StripeReader
from .entrypoints.grpc_api import LedgerServicer
from .service.handlers import Ledger
from .service.importer import Importer
from .service.ingestion import SOURCES
from .service.queries import Queries
from .service.reconcile import Reconciler
from .settings import LedgerSettings

__all__ = ["MUTATING", "PERMISSIONS", "SERVICE", "LedgerApp", "start"]

log = logging.getLogger("ledger")
SERVICE = "payplane.ledger.v1.LedgerService"
# The ledger's restricted Stripe key only reads money movement.
STRIPE_PERMISSIONS = {
    "balance": "read",
    "payouts": "read",
    "charges": "read",
    "refunds": "read",
    "disputes": "read",
}
# Who may call what, per method (a method named nowhere is denied to everyone): the books
# are finance's and admin's. Storefronts and support answer customers from checkout, which
# holds every payment and refund; nothing they do needs the ledger. tests/authz holds the
# expected table every change is checked against; the README says the same in words.
_BOOKS = {"admin", "finance"}
PERMISSIONS = {
    f"/{SERVICE}/GetBalance": _BOOKS,
    f"/{SERVICE}/ListEntries": _BOOKS,
    f"/{SERVICE}/GetEntry": _BOOKS,
    f"/{SERVICE}/GetAccountStatement": _BOOKS,
    f"/{SERVICE}/RunReconciliation": _BOOKS,
    f"/{SERVICE}/GetReconciliationRun": _BOOKS,
    f"/{SERVICE}/ListDiscrepancies": _BOOKS,
    f"/{SERVICE}/GetDiscrepancy": _BOOKS,
    f"/{SERVICE}/ResolveDiscrepancy": _BOOKS,
}
MUTATING = [f"/{SERVICE}/RunReconciliation", f"/{SERVICE}/ResolveDiscrepancy"]
MIGRATIONS = str(Path(__file__).parent / "migrations")
# How long start() waits for NATS before serving anyway (health NOT_SERVING until it comes).
NATS_START_WAIT_S = 10.0


async def _declare_streams(js: JetStreamContext) -> None:
    """After every (re)connection to NATS: the streams the ledger reads. Their producers own
    them; declaring them here too (idempotently) lets the ledger start first without losing
    what the producers publish meanwhile."""
    for source in SOURCES:
        await ensure_stream(js, source.stream, list(source.stream_subjects))


@dataclass
class LedgerApp:
    settings: LedgerSettings
    engine: AsyncEngine
    nc: NATS  # the raw client of `nats` below
    ledger: Ledger
    server: grpc.aio.Server
    grpc_port: int
    consumer: Consumer  # checkout's payment events (kept for callers of the first slice)
    nats: NatsConnection
    health: HealthMonitor
    watch: EventsWatch
    consumers: list[Consumer] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    gateway: StripeGateway | None = None
    reconciler: Reconciler | None = None
    importer: Importer | None = None
    queries: Queries | None = None

    async def stop(self, grace_s: float = 10.0) -> None:
        await drain(self.server, grace_s)
        for consumer in self.consumers:
            consumer.stop()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.reconciler is not None:
            await self.reconciler.stop()
        if self.gateway is not None:
            await self.gateway.aclose()
        await self.nats.close()  # never raises, NATS up or not
        await self.engine.dispose()


async def _continuous(reconciler: Reconciler, interval_s: float) -> None:
    """Reconcile as imports arrive: one run per interval (a failed run is logged, not fatal)."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await reconciler.run(mode="continuous")
        except Exception:  # the run records its own failure; keep the loop alive
            log.exception("continuous reconciliation failed")


async def start(settings: LedgerSettings) -> LedgerApp:
    await run_migrations(settings.database_url, MIGRATIONS, schema=settings.database_schema)
    engine = create_engine(settings.database_url, schema=settings.database_schema)
    sessions = session_factory(engine)
    ledger = Ledger(sessions, Inbox(tables.inbox))
    gateway: StripeGateway | None = None
    importer: Importer | None = None
    reconciler: Reconciler | None = None
    queries: Queries | None = None
    if settings.stripe_api_key:
        gateway = StripeGateway(
            GatewayConfig(
                api_key=settings.stripe_api_key,
                base_url=settings.stripe_api_base,
                service_name="ledger",
                max_requests_per_s=settings.stripe_max_rps,
            )
        )
        importer = Importer(sessions, StripeReader(gateway), settings.stripe_account_country)
        reconciler = Reconciler(
            sessions, importer, pricing=settings.pricing, policy=settings.healing
        )
        queries = Queries(sessions)
    conn = NatsConnection(settings.nats_url, name="ledger", on_connect=[_declare_streams])
    await conn.start()
    with contextlib.suppress(NatsUnavailable):
        await conn.wait_ready(NATS_START_WAIT_S)
    js = conn.jetstream
    consumers: list[Consumer] = []
    for source in SOURCES:
        for durable, subject in source.consumers.items():

            async def on_event(
                envelope: Envelope, meta: MessageMeta, durable: str = durable
            ) -> None:
                await ledger.handle_event(envelope, durable)

            consumers.append(Consumer(js, source.stream, durable, subject, on_event))
    idempotency = IdempotencyStore(sessions, tables.idempotency)
    server, port = await create_server(
        services=[
            (
                ledger_pb2_grpc.add_LedgerServiceServicer_to_server,
                LedgerServicer(
                    ledger, reconciler, queries, page_tokens=PageTokens(settings.page_token_key)
                ),
            )
        ],
        service_names=[SERVICE],
        auth=CallerAuth(settings.tokens, PERMISSIONS),
        idempotency=idempotency,
        mutating_methods=MUTATING,
        host=settings.grpc_host,
        port=settings.grpc_port,
    )
    health = HealthMonitor(server, {"nats": conn.check, "database": lambda: ping(engine)})
    await health.check_once()
    watch = EventsWatch(js, consumers=consumers)
    app = LedgerApp(
        settings, engine, conn.client, ledger, server, port, consumers[0], conn, health, watch,
        consumers, gateway=gateway, reconciler=reconciler, importer=importer, queries=queries,
    )  # fmt: skip
    app.tasks = [asyncio.create_task(c.run(), name=f"ledger-{c.durable}") for c in consumers]
    app.tasks += [
        asyncio.create_task(idempotency.run_sweeper(), name="ledger-idempotency-sweeper"),
        asyncio.create_task(
            run_housekeeping(sessions, inbox=ledger.inbox), name="ledger-housekeeping"
        ),
        asyncio.create_task(health.run(), name="ledger-health"),
        asyncio.create_task(watch.run(), name="ledger-events-watch"),
    ]
    if reconciler is not None and settings.reconcile_interval_s > 0:
        app.tasks.append(
            asyncio.create_task(
                _continuous(reconciler, settings.reconcile_interval_s), name="ledger-reconcile"
            )
        )
    log.info("ledger up: gRPC %s:%d", settings.grpc_host, port)
    return app
