"""checkout's composition root: the one place that builds engines, clients and servers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from aiohttp import web
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncEngine

from payplane.checkout.v1 import checkout_pb2_grpc, review_pb2_grpc
from payplane.db import create_engine, ping, run_migrations, session_factory
from payplane.events import (
    Consumer,
    EventsWatch,
    Inbox,
    Outbox,
    Relay,
    ensure_stream,
    run_housekeeping,
)
from payplane.grpckit import CallerAuth, HealthMonitor, PageTokens, create_server, drain
from payplane.idempotency import IdempotencyStore
from payplane.natsconn import NatsConnection, NatsUnavailable
from payplane.stripe_gateway import GatewayConfig, StripeGateway
from payplane.webhooks import KeyValueCursor, WebhookBackfill, create_webhook_app

from .adapters import tables
from .adapters.stripe_clock import detect_clock
from .adapters.stripe_payments import StripePayments
from .entrypoints import stripe_events
from .entrypoints.access import OwnerRule
from .entrypoints.grpc_api import CheckoutServicer
from .entrypoints.grpc_review import ReviewServicer
from .fraud.model import DEFAULT_MODEL_PATH, FraudModel
from .service.cases import Cases
from .service.expiry import AuthorisationExpiry
from .service.fraud import FraudScreen
from .service.handlers import Checkout, Policy
from .service.reviews import ReviewDesk
from .service.sweeper import PendingSweeper
from .settings import CheckoutSettings

__all__ = [
    "ACROSS_CALLERS",
    "MUTATING",
    "PERMISSIONS",
    "REVIEW_SERVICE",
    "SERVICE",
    "CheckoutApp",
    "start",
]

log = logging.getLogger("checkout")
SERVICE = "payplane.checkout.v1.CheckoutService"
REVIEW_SERVICE = "payplane.checkout.v1.ReviewService"
# What checkout's own restricted Stripe key must allow (its slice of Stripe, nothing more).
STRIPE_PERMISSIONS = {
    "payment_intents": "write",
    "payment_methods": "read",
    "charges": "read",
    "refunds": "write",
    "disputes": "read",
    "reviews": "write",
    "radar": "read",
    "events": "read",  # the webhook backfill lists what Stripe could not deliver
}
MUTATING = {
    f"/{SERVICE}/CreatePayment",
    f"/{SERVICE}/RefundPayment",
    f"/{SERVICE}/CapturePayment",
    f"/{SERVICE}/CancelPayment",
    f"/{SERVICE}/ConfirmPayment",
    f"/{REVIEW_SERVICE}/ApproveReview",
    f"/{REVIEW_SERVICE}/RejectReview",
}
# Who may call what (a method named nowhere is denied to everyone). The README's table says
# the same in words; tests/authz holds the expected table every change is checked against.
_READERS = {"storefront", "admin", "support", "ledger", "reviewer"}
_REVIEWERS = {"reviewer"}  # the reviewer role: the only callers who may decide a review
PERMISSIONS = {
    f"/{SERVICE}/CreatePayment": {"storefront", "admin"},
    f"/{SERVICE}/ConfirmPayment": {"storefront", "admin"},
    f"/{SERVICE}/CapturePayment": {"storefront", "admin"},
    f"/{SERVICE}/CancelPayment": {"storefront", "admin", "support"},
    f"/{SERVICE}/RefundPayment": {"storefront", "admin", "support"},
    f"/{SERVICE}/GetPayment": _READERS,
    f"/{SERVICE}/ListPayments": _READERS,
    f"/{SERVICE}/GetPaymentTimeline": _READERS,
    f"/{REVIEW_SERVICE}/ListReviews": {"reviewer", "admin", "support"},
    f"/{REVIEW_SERVICE}/GetReview": {"reviewer", "admin", "support"},
    f"/{REVIEW_SERVICE}/ApproveReview": _REVIEWERS,
    f"/{REVIEW_SERVICE}/RejectReview": _REVIEWERS,
}
# Callers who may use a method on payments other callers created; everyone else acts only
# on its own (another caller's payment is NOT_FOUND to it). Reviewers act through the review
# desk. A payment's client_secret goes only to the caller who created it.
_ACROSS_READERS = {"admin", "support", "reviewer", "ledger"}
ACROSS_CALLERS = {
    f"/{SERVICE}/GetPayment": _ACROSS_READERS,
    f"/{SERVICE}/GetPaymentTimeline": _ACROSS_READERS,
    f"/{SERVICE}/ListPayments": _ACROSS_READERS,
    f"/{SERVICE}/RefundPayment": {"admin", "support"},
    f"/{SERVICE}/CancelPayment": {"admin", "support"},
    f"/{SERVICE}/CapturePayment": {"admin"},
    f"/{SERVICE}/ConfirmPayment": {"admin"},
}
EVENTS_STREAM = "CHECKOUT"
MIGRATIONS = str(Path(__file__).parent / "migrations")
# How long start() waits for NATS before serving anyway (health NOT_SERVING until it comes).
NATS_START_WAIT_S = 10.0


async def _declare_streams(js: JetStreamContext) -> None:
    """After every (re)connection to NATS: the streams checkout publishes to."""
    await ensure_stream(js, EVENTS_STREAM, ["checkout.>"])
    await ensure_stream(js, stripe_events.STREAM, [f"{stripe_events.SUBJECT_PREFIX}.>"])


@dataclass
class CheckoutApp:
    settings: CheckoutSettings
    engine: AsyncEngine
    nc: NATS  # the raw client of `nats` below
    gateway: StripeGateway
    checkout: Checkout
    desk: ReviewDesk
    cases: Cases
    expiry: AuthorisationExpiry
    sweeper: PendingSweeper
    server: grpc.aio.Server
    grpc_port: int
    webhook_runner: web.AppRunner
    webhook_port: int
    relay: Relay
    consumer: Consumer
    nats: NatsConnection
    health: HealthMonitor
    backfill: WebhookBackfill
    watch: EventsWatch
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def stop(self, grace_s: float = 10.0) -> None:
        """Drain gRPC, stop the background loops, close connections (in that order)."""
        await drain(self.server, grace_s)
        await self.webhook_runner.cleanup()
        self.relay.stop()
        self.consumer.stop()
        self.backfill.stop()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.checkout.drain()
        await self.nats.close()  # never raises, NATS up or not
        await self.gateway.aclose()
        await self.engine.dispose()


async def start(settings: CheckoutSettings) -> CheckoutApp:
    """Migrate, connect, and start serving; returns once every part is up."""
    await run_migrations(settings.database_url, MIGRATIONS, schema=settings.database_schema)
    engine = create_engine(settings.database_url, schema=settings.database_schema)
    sessions = session_factory(engine)
    gateway = StripeGateway(
        GatewayConfig(
            api_key=settings.stripe_api_key,
            base_url=settings.stripe_api_base,
            service_name="checkout",
            max_requests_per_s=settings.stripe_max_rps,
        )
    )
    conn = NatsConnection(settings.nats_url, name="checkout", on_connect=[_declare_streams])
    await conn.start()
    with contextlib.suppress(NatsUnavailable):
        await conn.wait_ready(NATS_START_WAIT_S)
    js = conn.jetstream
    outbox = Outbox(tables.outbox)
    inbox = Inbox(tables.inbox)
    live = FraudModel.load(settings.fraud_model_path or DEFAULT_MODEL_PATH)
    shadow = (
        FraudModel.load(settings.fraud_shadow_model_path)
        if settings.fraud_shadow_model_path
        else None
    )
    policy = Policy(
        auth_expiry_after_s=settings.auth_expiry_after_s,
        efw_auto_refund_max=settings.efw_auto_refund_max_minor,
        review_default_on_expiry=settings.review_default_on_expiry,
        pending_sweep_after_s=settings.pending_sweep_after_s,
    )
    checkout = Checkout(
        sessions, StripePayments(gateway), outbox, screen=FraudScreen(live, shadow), policy=policy
    )
    desk = ReviewDesk(checkout)
    cases = Cases(checkout, desk)
    stripe_clock = await detect_clock(settings.stripe_clock, settings.stripe_api_base)
    expiry = AuthorisationExpiry(
        checkout, desk, stripe_clock, settings.auth_expiry_check_interval_s
    )
    sweeper = PendingSweeper(checkout, stripe_clock, settings.pending_sweep_interval_s)
    idempotency = IdempotencyStore(sessions, tables.idempotency)
    page_tokens = PageTokens(settings.page_token_key)
    servicer = CheckoutServicer(checkout, page_tokens, OwnerRule(ACROSS_CALLERS))
    server, grpc_port = await create_server(
        services=[
            (checkout_pb2_grpc.add_CheckoutServiceServicer_to_server, servicer),
            (
                review_pb2_grpc.add_ReviewServiceServicer_to_server,
                ReviewServicer(desk, page_tokens),
            ),
        ],
        service_names=[SERVICE, REVIEW_SERVICE],
        auth=CallerAuth(settings.tokens, PERMISSIONS),
        idempotency=idempotency,
        mutating_methods=MUTATING,
        host=settings.grpc_host,
        port=settings.grpc_port,
    )
    publish_stripe_event = stripe_events.make_publisher(js)
    webhook_app = create_webhook_app(settings.webhook_secrets, publish_stripe_event)
    runner = web.AppRunner(webhook_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.webhook_host, settings.webhook_port)
    await site.start()
    webhook_port = settings.webhook_port
    for address in runner.addresses:
        webhook_port = address[1]
        break
    relay = Relay(sessions, tables.outbox, js)
    consumer = Consumer(
        js,
        stripe_events.STREAM,
        stripe_events.CONSUMER,
        f"{stripe_events.SUBJECT_PREFIX}.>",
        stripe_events.make_handler(cases, sessions, inbox),
    )
    health = HealthMonitor(server, {"nats": conn.check, "database": lambda: ping(engine)})
    await health.check_once()
    backfill = WebhookBackfill(
        gateway,
        publish_stripe_event,
        stripe_events.EVENT_TYPES,
        cursor=KeyValueCursor(js, key="checkout"),
        interval_s=settings.webhook_backfill_interval_s,
        lookback_s=settings.webhook_backfill_lookback_s,
        clock=stripe_clock.now,
    )
    watch = EventsWatch(js, sessions=sessions, outbox=outbox, consumers=[consumer])
    app = CheckoutApp(
        settings,
        engine,
        conn.client,
        gateway,
        checkout,
        desk,
        cases,
        expiry,
        sweeper,
        server,
        grpc_port,
        runner,
        webhook_port,
        relay,
        consumer,
        conn,
        health,
        backfill,
        watch,
    )
    app.tasks = [
        asyncio.create_task(relay.run(), name="checkout-relay"),
        asyncio.create_task(consumer.run(), name="checkout-stripe-events"),
        asyncio.create_task(idempotency.run_sweeper(), name="checkout-idempotency-sweeper"),
        asyncio.create_task(expiry.run(), name="checkout-authorisation-expiry"),
        asyncio.create_task(sweeper.run(), name="checkout-pending-sweeper"),
        asyncio.create_task(
            run_housekeeping(sessions, outbox=outbox, inbox=inbox), name="checkout-housekeeping"
        ),
        asyncio.create_task(health.run(), name="checkout-health"),
        asyncio.create_task(backfill.run(), name="checkout-webhook-backfill"),
        asyncio.create_task(watch.run(), name="checkout-events-watch"),
    ]
    log.info("checkout up: gRPC %s:%d, webhooks %s:%d", settings.grpc_host, grpc_port,
             settings.webhook_host, webhook_port)  # fmt: skip
    return app
