"""NATS goes away for longer than the client's old reconnect budget: health says so, events
flow again when it is back, and a shutdown while it is away does not crash."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2
from nats.aio.client import Client

from checkout import bootstrap as checkout_bootstrap
from checkout.bootstrap import start as start_checkout
from payplane.checkout.v1 import checkout_pb2
from payplane.grpckit.testing import health_status
from stripe_emulator.testing import EmulatorHandle

from .harness import Platform, eventually, start_platform

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
# The client's default budget is 60 reconnection attempts 2 s apart (2 minutes). Tests shrink
# the wait to make that budget visible; code that sets its own waits is not affected.
SHRUNK_WAIT_S = 0.1
OLD_BUDGET_S = 60 * SHRUNK_WAIT_S


@pytest.fixture
def shrunk_default_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    real = Client.connect

    async def connect(self: Client, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("reconnect_time_wait", SHRUNK_WAIT_S)
        await real(self, *args, **kwargs)

    monkeypatch.setattr(Client, "connect", connect)


@pytest.fixture
async def outage_platform(
    emulator: EmulatorHandle, tmp_path: Path, shrunk_default_budget: None
) -> AsyncIterator[Platform]:
    emulator.control.reset()
    emulator.control.configure(webhook_retry_base_s=0.05, webhook_retry_max_s=0.5)
    p = await start_platform(emulator, tmp_path)
    try:
        yield p
    finally:
        await p.close()


async def _health(port: int) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        return await health_status(ch)


async def _both(platform: Platform) -> tuple[int, int]:
    return (
        await _health(platform.checkout_app.grpc_port),
        await _health(platform.ledger_app.grpc_port),
    )


async def test_events_flow_again_after_an_outage_longer_than_the_old_budget(
    outage_platform: Platform,
) -> None:
    """Defect 3: after such an outage the connection was closed for good, the relay and the
    consumers spun on ConnectionClosedError and health still said SERVING."""
    platform = outage_platform
    before = await platform.pay("k-outage-before", amount=1_100)
    await eventually(lambda: platform.balance("revenue"), lambda v: v == -1_100)
    assert await _both(platform) == (SERVING, SERVING)

    await platform.nats.stop()
    await eventually(lambda: _both(platform), lambda s: s == (NOT_SERVING, NOT_SERVING))
    # Payments are still taken (the outbox keeps their events) while NATS is away.
    during = await platform.pay("k-outage-during", amount=2_200)
    assert during.status == checkout_pb2.PAYMENT_STATUS_SUCCEEDED
    await asyncio.sleep(OLD_BUDGET_S + 2)  # the outage outlasts the old budget
    assert await _both(platform) == (NOT_SERVING, NOT_SERVING)

    await platform.nats.start()
    await eventually(lambda: _both(platform), lambda s: s == (SERVING, SERVING), timeout_s=30)
    expected = -(before.amount.amount_minor + during.amount.amount_minor)
    await eventually(lambda: platform.balance("revenue"), lambda v: v == expected, timeout_s=30)

    # Signed webhooks are accepted again: a 3-D Secure payment completes through them.
    pending = await platform.pay("k-outage-3ds", amount=3_300, pm="pm_card_threeDSecure2Required")
    platform.emulator.control.call(
        "POST",
        f"/_emulator/payment_intents/{pending.stripe_payment_intent_id}/three_d_secure",
        {"outcome": "pass"},
    )
    stub = platform.checkout()

    async def status() -> int:
        p = await stub.GetPayment(checkout_pb2.GetPaymentRequest(payment_id=pending.id))
        return int(p.status)

    await eventually(status, lambda s: s == checkout_pb2.PAYMENT_STATUS_SUCCEEDED, timeout_s=30)


async def test_a_shutdown_while_nats_is_away_does_not_crash(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    emulator.control.reset()
    platform = await start_platform(emulator, tmp_path)
    try:
        await platform.nats.stop()
        await eventually(lambda: _both(platform), lambda s: s == (NOT_SERVING, NOT_SERVING))
    finally:
        await platform.close()  # stops both services: this crashed in drain()


async def test_a_service_restarted_while_nats_is_away_comes_up_and_catches_up(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed and restarted during an outage: it starts (NOT_SERVING) instead of failing,
    takes payments, and its events reach the ledger once NATS is back."""
    monkeypatch.setattr(checkout_bootstrap, "NATS_START_WAIT_S", 0.5, raising=False)
    await platform.nats.stop()
    settings = platform.checkout_app.settings
    await platform.checkout_app.stop(grace_s=1)
    platform.checkout_app = await start_checkout(settings)
    assert await _health(platform.checkout_app.grpc_port) == NOT_SERVING

    paid = await platform.pay("k-restarted-during-outage", amount=5_500)
    assert paid.status == checkout_pb2.PAYMENT_STATUS_SUCCEEDED

    await platform.nats.start()
    await eventually(lambda: _both(platform), lambda s: s == (SERVING, SERVING), timeout_s=30)
    await eventually(lambda: platform.balance("revenue"), lambda v: v == -5_500, timeout_s=30)
