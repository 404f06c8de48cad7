"""ledger's composition root."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import nats
from nats.aio.client import Client as NATS
from sqlalchemy.ext.asyncio import AsyncEngine

from payplane.db import create_engine, run_migrations, session_factory
from payplane.events import Consumer, Envelope, Inbox, MessageMeta, ensure_stream
from payplane.grpckit import CallerAuth, create_server, drain
from payplane.ledger.v1 import ledger_pb2_grpc

from .adapters import tables
from .entrypoints.grpc_api import LedgerServicer
from .service.handlers import CONSUMER, Ledger
from .settings import LedgerSettings

__all__ = ["PERMISSIONS", "SERVICE", "LedgerApp", "start"]

log = logging.getLogger("ledger")
SERVICE = "payplane.ledger.v1.LedgerService"
PERMISSIONS = {f"/{SERVICE}/*": {"admin", "finance", "support", "storefront"}}
CHECKOUT_STREAM = "CHECKOUT"
MIGRATIONS = str(Path(__file__).parent / "migrations")


@dataclass
class LedgerApp:
    settings: LedgerSettings
    engine: AsyncEngine
    nc: NATS
    ledger: Ledger
    server: grpc.aio.Server
    grpc_port: int
    consumer: Consumer
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def stop(self, grace_s: float = 10.0) -> None:
        await drain(self.server, grace_s)
        self.consumer.stop()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.nc.drain()
        await self.engine.dispose()


async def start(settings: LedgerSettings) -> LedgerApp:
    await run_migrations(settings.database_url, MIGRATIONS, schema=settings.database_schema)
    engine = create_engine(settings.database_url, schema=settings.database_schema)
    sessions = session_factory(engine)
    ledger = Ledger(sessions, Inbox(tables.inbox))
    nc = await nats.connect(settings.nats_url, name="ledger")
    js = nc.jetstream()
    # The producer owns its stream; declaring it here too (idempotently) lets the ledger
    # start first without losing what checkout publishes meanwhile.
    await ensure_stream(js, CHECKOUT_STREAM, ["checkout.>"])

    async def on_checkout_event(envelope: Envelope, meta: MessageMeta) -> None:
        await ledger.handle_event(envelope)

    consumer = Consumer(js, CHECKOUT_STREAM, CONSUMER, "checkout.payment.>", on_checkout_event)
    await consumer.ensure()
    server, port = await create_server(
        services=[(ledger_pb2_grpc.add_LedgerServiceServicer_to_server, LedgerServicer(ledger))],
        service_names=[SERVICE],
        auth=CallerAuth(settings.tokens, PERMISSIONS),
        host=settings.grpc_host,
        port=settings.grpc_port,
    )
    app = LedgerApp(settings, engine, nc, ledger, server, port, consumer)
    app.tasks = [asyncio.create_task(consumer.run(), name="ledger-checkout-events")]
    log.info("ledger up: gRPC %s:%d", settings.grpc_host, port)
    return app
