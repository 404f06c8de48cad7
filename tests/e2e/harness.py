"""The platform in one test: a fresh NATS (from the wheel), the Stripe emulator, and
checkout and ledger started through their own composition roots, reached over real gRPC."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
import stripe

from checkout.bootstrap import STRIPE_PERMISSIONS as CHECKOUT_PERMISSIONS
from checkout.bootstrap import CheckoutApp
from checkout.bootstrap import start as start_checkout
from checkout.entrypoints.stripe_events import EVENT_TYPES
from checkout.settings import CheckoutSettings
from ledger.bootstrap import STRIPE_PERMISSIONS as LEDGER_PERMISSIONS
from ledger.bootstrap import LedgerApp
from ledger.bootstrap import start as start_ledger
from ledger.settings import LedgerSettings
from payplane.checkout.v1 import checkout_pb2, checkout_pb2_grpc, review_pb2_grpc
from payplane.common.v1 import common_pb2
from payplane.db.testing import TestDatabase
from payplane.grpckit import channel, idempotency_metadata
from payplane.ledger.v1 import ledger_pb2, ledger_pb2_grpc
from payplane.natsd import NatsServer
from stripe_emulator.testing import EmulatorHandle

T = TypeVar("T")
# One token per caller role the services know (the authorisation suite calls as each).
TOKENS = {
    "storefront": "tok-storefront",
    "admin": "tok-admin",
    "support": "tok-support",
    "finance": "tok-finance",
    "reviewer": "tok-reviewer",
    "ledger": "tok-ledger",
}
STRIPE_KEY = "sk_test_payplane_e2e"
# The ledger's own restricted key: it only reads Stripe's money movement.
LEDGER_STRIPE_KEY = "rk_test_payplane_ledger_e2e"
# Each service runs with its own restricted key, as in production.
CHECKOUT_STRIPE_KEY = "rk_test_payplane_checkout_e2e"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def eventually(
    probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool], timeout_s: float = 20.0
) -> T:
    """Poll until `ok(value)`; fail with the last value after a bounded wait."""
    deadline = time.monotonic() + timeout_s
    value = await probe()
    while not ok(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached; last value: {value!r}")
        await asyncio.sleep(0.05)
        value = await probe()
    return value


@dataclass
class Platform:
    emulator: EmulatorHandle
    nats: NatsServer
    checkout_app: CheckoutApp
    ledger_app: LedgerApp
    webhook_endpoint_id: str
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    def checkout(self, caller: str = "storefront") -> checkout_pb2_grpc.CheckoutServiceStub:
        ch = channel(f"127.0.0.1:{self.checkout_app.grpc_port}", TOKENS[caller])
        self.channels.append(ch)
        return checkout_pb2_grpc.CheckoutServiceStub(ch)

    def checkout_with_token(self, token: str) -> checkout_pb2_grpc.CheckoutServiceStub:
        ch = channel(f"127.0.0.1:{self.checkout_app.grpc_port}", token)
        self.channels.append(ch)
        return checkout_pb2_grpc.CheckoutServiceStub(ch)

    def reviews(self, caller: str = "reviewer") -> review_pb2_grpc.ReviewServiceStub:
        ch = channel(f"127.0.0.1:{self.checkout_app.grpc_port}", TOKENS[caller])
        self.channels.append(ch)
        return review_pb2_grpc.ReviewServiceStub(ch)

    def ledger(self, caller: str = "admin") -> ledger_pb2_grpc.LedgerServiceStub:
        ch = channel(f"127.0.0.1:{self.ledger_app.grpc_port}", TOKENS[caller])
        self.channels.append(ch)
        return ledger_pb2_grpc.LedgerServiceStub(ch)

    @property
    def stripe(self) -> stripe.StripeClient:
        return self.emulator.stripe_client(STRIPE_KEY)

    async def pay(
        self,
        key: str,
        amount: int = 2_000,
        currency: str = "usd",
        pm: str = "pm_card_visa",
        **extra: Any,
    ) -> checkout_pb2.Payment:
        request = checkout_pb2.CreatePaymentRequest(
            amount=common_pb2.Money(amount_minor=amount, currency=currency),
            customer_ref=extra.pop("customer_ref", "cust-1"),
            payment_method=pm,
            **extra,
        )
        result: checkout_pb2.Payment = await self.checkout().CreatePayment(
            request, metadata=idempotency_metadata(key), timeout=30
        )
        return result

    async def balance(self, account: str, currency: str = "usd") -> int:
        reply = await self.ledger().GetBalance(
            ledger_pb2.GetBalanceRequest(account=account, currency=currency), timeout=10
        )
        return int(reply.balance.amount_minor)

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        path = f"/_emulator/webhook_endpoints/{self.webhook_endpoint_id}/deliveries"
        data: list[dict[str, Any]] = self.emulator.control.call("GET", path)["data"]
        return data

    def stripe_creates(self) -> list[dict[str, Any]]:
        """PaymentIntent creations Stripe really executed (replays excluded)."""
        return [
            e
            for e in self.emulator.control.requests(method="POST", path="/v1/payment_intents")
            if e["status"] in (200, 402) and not e["replayed"]
        ]

    async def close(self) -> None:
        for ch in self.channels:
            await ch.close(grace=None)
        await self.checkout_app.stop(grace_s=2)
        await self.ledger_app.stop(grace_s=2)
        await self.nats.stop()


async def start_platform(
    emulator: EmulatorHandle, tmp_path: Path, db: TestDatabase | None = None
) -> Platform:
    nats = await NatsServer(store_dir=tmp_path / "nats").start()
    webhook_port = free_port()
    endpoint = emulator.stripe_client(STRIPE_KEY).v1.webhook_endpoints.create(
        params={
            "url": f"http://127.0.0.1:{webhook_port}/webhooks/stripe",
            "enabled_events": EVENT_TYPES,
        }
    )
    emulator.control.restricted_key(CHECKOUT_STRIPE_KEY, CHECKOUT_PERMISSIONS)
    tokens = ",".join(f"{caller}={token}" for caller, token in TOKENS.items())
    if db is None or db.kind == "sqlite":
        checkout_db = f"sqlite:///{tmp_path / 'checkout.db'}"
        ledger_db = f"sqlite:///{tmp_path / 'ledger.db'}"
        checkout_schema = ledger_schema = None
    else:
        checkout_db = ledger_db = db.url
        checkout_schema, ledger_schema = f"{db.schema}_checkout", f"{db.schema}_ledger"
    checkout_app = await start_checkout(
        CheckoutSettings(
            database_url=checkout_db,
            database_schema=checkout_schema,
            nats_url=nats.url,
            stripe_api_key=CHECKOUT_STRIPE_KEY,
            stripe_api_base=emulator.url,
            stripe_max_rps=1000,
            stripe_webhook_secrets=str(endpoint.secret),
            grpc_port=0,
            webhook_port=webhook_port,
            caller_tokens=tokens,
        )
    )
    emulator.control.restricted_key(LEDGER_STRIPE_KEY, LEDGER_PERMISSIONS)
    ledger_app = await start_ledger(
        LedgerSettings(
            database_url=ledger_db,
            database_schema=ledger_schema,
            nats_url=nats.url,
            grpc_port=0,
            caller_tokens=tokens,
            stripe_api_key=LEDGER_STRIPE_KEY,
            stripe_api_base=emulator.url,
            stripe_max_rps=1000,
            reconcile_interval_s=0,  # tests run reconciliation when they mean to
        )
    )
    return Platform(emulator, nats, checkout_app, ledger_app, str(endpoint.id))
