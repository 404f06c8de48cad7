"""checkout alone, for its lifecycle, fraud and review tests: a fresh NATS (from the wheel),
the shared emulator, checkout through its own composition root with test overrides (a fraud
model file, a fast expiry sweep, a reviewer caller), reached over real gRPC.

Independent of tests/e2e/harness.py on purpose: the ledger is not needed here, and this keeps
checkout's tests out of the way of the ledger's work on the shared harness.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import nats

from checkout.bootstrap import CheckoutApp
from checkout.bootstrap import start as start_checkout
from checkout.entrypoints.stripe_events import EVENT_TYPES
from checkout.settings import CheckoutSettings
from payplane.checkout.v1 import (
    checkout_pb2,
    checkout_pb2_grpc,
    events_pb2,
    review_pb2,
    review_pb2_grpc,
)
from payplane.common.v1 import common_pb2
from payplane.db.testing import TestDatabase
from payplane.events import Envelope, unpack_payload
from payplane.grpckit import channel, idempotency_metadata
from payplane.natsd import NatsServer
from stripe_emulator.testing import EmulatorHandle

from .harness import free_port

TOKENS = {
    "storefront": "tok-storefront",
    "admin": "tok-admin",
    "support": "tok-support",
    "reviewer": "tok-reviewer",
}
STRIPE_KEY = "sk_test_payplane_checkout_e2e"
BLOCKED_EMAIL = "mallory@example.com"
CHALLENGE_AT = 66_600  # usd minor units: the test model challenges from here ...
REVIEW_AT = 77_700  # ... and holds for review from here

# A model whose decisions the tests can steer: a block list, and two amount limits.
TEST_MODEL: dict[str, Any] = {
    "version": "e2e-model-1",
    "bias": -6.0,
    "weights": {"velocity_card_10m": 0.01, "first_purchase": 0.1},
    "thresholds": {"challenge": 0.6, "review": 0.8, "block": 0.95},
    "lists": {"block": {"email": [BLOCKED_EMAIL]}, "allow": {}},
    "limits": [
        {"name": "challenge_band", "feature": "amount", "currency": "usd",
         "at_least": CHALLENGE_AT, "action": "challenge"},
        {"name": "review_band", "feature": "amount", "currency": "usd",
         "at_least": REVIEW_AT, "action": "review"},
    ],
}  # fmt: skip


@dataclass
class CheckoutPlatform:
    emulator: EmulatorHandle
    nats: NatsServer
    app: CheckoutApp
    webhook_endpoint_id: str = ""
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    def _channel(self, caller: str) -> grpc.aio.Channel:
        ch = channel(f"127.0.0.1:{self.app.grpc_port}", TOKENS[caller])
        self.channels.append(ch)
        return ch

    def checkout(self, caller: str = "storefront") -> checkout_pb2_grpc.CheckoutServiceStub:
        return checkout_pb2_grpc.CheckoutServiceStub(self._channel(caller))

    def reviews(self, caller: str = "reviewer") -> review_pb2_grpc.ReviewServiceStub:
        return review_pb2_grpc.ReviewServiceStub(self._channel(caller))

    async def pay(
        self, key: str, amount: int = 2_000, pm: str = "pm_card_visa", **extra: Any
    ) -> checkout_pb2.Payment:
        request = checkout_pb2.CreatePaymentRequest(
            amount=common_pb2.Money(amount_minor=amount, currency=extra.pop("currency", "usd")),
            customer_ref=extra.pop("customer_ref", "cust-1"),
            payment_method=pm,
            **extra,
        )
        result: checkout_pb2.Payment = await self.checkout().CreatePayment(
            request, metadata=idempotency_metadata(key), timeout=30
        )
        return result

    async def get(self, payment_id: str) -> checkout_pb2.Payment:
        result: checkout_pb2.Payment = await self.checkout().GetPayment(
            checkout_pb2.GetPaymentRequest(payment_id=payment_id), timeout=10
        )
        return result

    async def review_of(self, payment_id: str) -> review_pb2.ReviewDetail:
        p = await self.get(payment_id)
        assert p.review_id, f"payment {payment_id} has no review"
        result: review_pb2.ReviewDetail = await self.reviews().GetReview(
            review_pb2.GetReviewRequest(review_id=p.review_id), timeout=10
        )
        return result

    def three_d_secure(self, p: checkout_pb2.Payment, outcome: str) -> None:
        self.emulator.control.call(
            "POST",
            f"/_emulator/payment_intents/{p.stripe_payment_intent_id}/three_d_secure",
            {"outcome": outcome},
        )

    async def published(self, subject: str) -> list[tuple[str, Any]]:
        """Every checkout event on `subject` so far, as (type, decoded payload)."""
        nc = await nats.connect(self.nats.url)
        out: list[tuple[str, Any]] = []
        try:
            js = nc.jetstream()
            sub = await js.subscribe(subject, stream="CHECKOUT", ordered_consumer=True)
            while True:
                try:
                    msg = await sub.next_msg(timeout=0.3)
                except (TimeoutError, nats.errors.TimeoutError):
                    break
                env = Envelope()
                env.ParseFromString(msg.data)
                cls = {
                    "payplane.checkout.v1.DisputeUpdated": events_pb2.DisputeUpdated,
                    "payplane.checkout.v1.ReviewOpened": events_pb2.ReviewOpened,
                    "payplane.checkout.v1.ReviewClosed": events_pb2.ReviewClosed,
                    "payplane.checkout.v1.PaymentRefunded": events_pb2.PaymentRefunded,
                    "payplane.checkout.v1.PaymentSucceeded": events_pb2.PaymentSucceeded,
                    "payplane.checkout.v1.PaymentFailed": events_pb2.PaymentFailed,
                }[env.payload_type]
                out.append((env.type, unpack_payload(env, cls)))
        finally:
            await nc.close()
        return out

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        path = f"/_emulator/webhook_endpoints/{self.webhook_endpoint_id}/deliveries"
        data: list[dict[str, Any]] = self.emulator.control.call("GET", path)["data"]
        return data

    async def close(self) -> None:
        for ch in self.channels:
            await ch.close(grace=None)
        await self.app.stop(grace_s=2)
        await self.nats.stop()


@contextlib.asynccontextmanager
async def running_checkout(
    emulator: EmulatorHandle,
    tmp_path: Path,
    db: TestDatabase | None = None,
    model: dict[str, Any] | None = None,
    **overrides: Any,
) -> AsyncIterator[CheckoutPlatform]:
    emulator.control.reset()
    emulator.control.configure(webhook_retry_base_s=0.05, webhook_retry_max_s=0.5)
    nats_server = await NatsServer(store_dir=tmp_path / "nats").start()
    webhook_port = free_port()
    endpoint = emulator.stripe_client(STRIPE_KEY).v1.webhook_endpoints.create(
        params={
            "url": f"http://127.0.0.1:{webhook_port}/webhooks/stripe",
            "enabled_events": EVENT_TYPES,
        }
    )
    model_path = tmp_path / "fraud-model.json"
    model_path.write_text(json.dumps(model or TEST_MODEL))
    if db is None or db.kind == "sqlite":
        url, schema = f"sqlite:///{tmp_path / 'checkout.db'}", None
    else:
        url, schema = db.url, f"{db.schema}_checkout"
    settings: dict[str, Any] = {
        "database_url": url,
        "database_schema": schema,
        "nats_url": nats_server.url,
        "stripe_api_key": STRIPE_KEY,
        "stripe_api_base": emulator.url,
        "stripe_max_rps": 1000,
        "stripe_webhook_secrets": str(endpoint.secret),
        "grpc_port": 0,
        "webhook_port": webhook_port,
        "caller_tokens": ",".join(f"{c}={t}" for c, t in TOKENS.items()),
        "fraud_model_path": str(model_path),
        "auth_expiry_check_interval_s": 0.2,
    }
    settings.update(overrides)
    app = await start_checkout(CheckoutSettings(**settings))
    platform = CheckoutPlatform(emulator, nats_server, app, str(endpoint.id))
    try:
        yield platform
    finally:
        emulator.control.clear_faults()
        await platform.close()


async def until(probe: Any, ok: Any, timeout_s: float = 20.0) -> Any:
    """Poll `probe()` until `ok(value)`; fail with the last value after a bounded wait."""
    deadline = time.monotonic() + timeout_s
    value = await probe()
    while not ok(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached; last value: {value!r}")
        await asyncio.sleep(0.05)
        value = await probe()
    return value
