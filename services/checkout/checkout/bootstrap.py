"""checkout's composition root: the one place that builds engines, clients and servers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import nats
from aiohttp import web
from nats.aio.client import Client as NATS
from sqlalchemy.ext.asyncio import AsyncEngine

from payplane.checkout.v1 import checkout_pb2_grpc, review_pb2_grpc
from payplane.db import create_engine, run_migrations, session_factory
from payplane.events import Consumer, Inbox, Outbox, Relay, ensure_stream, run_housekeeping
from payplane.grpckit import CallerAuth, create_server, drain
from payplane.idempotency import IdempotencyStore
from payplane.stripe_gateway import GatewayConfig, StripeGateway
from payplane.webhooks import create_webhook_app

from .adapters import tables
from .adapters.stripe_clock import detect_clock
from .adapters.stripe_payments import StripePayments
from .entrypoints import stripe_events
from .entrypoints.grpc_api import CheckoutServicer
from .entrypoints.grpc_review import ReviewServicer
from .fraud.model import DEFAULT_MODEL_PATH, FraudModel
from .service.cases import Cases
from .service.expiry import AuthorisationExpiry
from .service.fraud import FraudScreen
from .service.handlers import Checkout, Policy
from .service.reviews import ReviewDesk
from .settings import CheckoutSettings

__all__ = ["MUTATING", "PERMISSIONS", "REVIEW_SERVICE", "SERVICE", "CheckoutApp", "start"]

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
EVENTS_STREAM = "CHECKOUT"
MIGRATIONS = str(Path(__file__).parent / "migrations")


@dataclass
class CheckoutApp:
    settings: CheckoutSettings
    engine: AsyncEngine
    nc: NATS
    gateway: StripeGateway
    checkout: Checkout
    desk: ReviewDesk
    cases: Cases
    expiry: AuthorisationExpiry
    server: grpc.aio.Server
    grpc_port: int
    webhook_runner: web.AppRunner
    webhook_port: int
    relay: Relay
    consumer: Consumer
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def stop(self, grace_s: float = 10.0) -> None:
        """Drain gRPC, stop the background loops, close connections (in that order)."""
        await drain(self.server, grace_s)
        await self.webhook_runner.cleanup()
        self.relay.stop()
        self.consumer.stop()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.nc.drain()
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
    nc = await nats.connect(settings.nats_url, name="checkout")
    js = nc.jetstream()
    await ensure_stream(js, EVENTS_STREAM, ["checkout.>"])
    await ensure_stream(js, stripe_events.STREAM, [f"{stripe_events.SUBJECT_PREFIX}.>"])
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
    )
    checkout = Checkout(
        sessions, StripePayments(gateway), outbox, screen=FraudScreen(live, shadow), policy=policy
    )
    desk = ReviewDesk(checkout)
    cases = Cases(checkout, desk)
    expiry = AuthorisationExpiry(
        checkout,
        desk,
        await detect_clock(settings.stripe_clock, settings.stripe_api_base),
        settings.auth_expiry_check_interval_s,
    )
    idempotency = IdempotencyStore(sessions, tables.idempotency)
    server, grpc_port = await create_server(
        services=[
            (checkout_pb2_grpc.add_CheckoutServiceServicer_to_server, CheckoutServicer(checkout)),
            (review_pb2_grpc.add_ReviewServiceServicer_to_server, ReviewServicer(desk)),
        ],
        service_names=[SERVICE, REVIEW_SERVICE],
        auth=CallerAuth(settings.tokens, PERMISSIONS),
        idempotency=idempotency,
        mutating_methods=MUTATING,
        host=settings.grpc_host,
        port=settings.grpc_port,
    )
    webhook_app = create_webhook_app(settings.webhook_secrets, stripe_events.make_publisher(js))
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
    await consumer.ensure()
    app = CheckoutApp(
        settings,
        engine,
        nc,
        gateway,
        checkout,
        desk,
        cases,
        expiry,
        server,
        grpc_port,
        runner,
        webhook_port,
        relay,
        consumer,
    )
    app.tasks = [
        asyncio.create_task(relay.run(), name="checkout-relay"),
        asyncio.create_task(consumer.run(), name="checkout-stripe-events"),
        asyncio.create_task(idempotency.run_sweeper(), name="checkout-idempotency-sweeper"),
        asyncio.create_task(expiry.run(), name="checkout-authorisation-expiry"),
        asyncio.create_task(
            run_housekeeping(sessions, outbox=outbox, inbox=inbox), name="checkout-housekeeping"
        ),
    ]
    log.info("checkout up: gRPC %s:%d, webhooks %s:%d", settings.grpc_host, grpc_port,
             settings.webhook_host, webhook_port)  # fmt: skip
    return app
