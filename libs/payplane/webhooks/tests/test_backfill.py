"""The backfill against the Stripe emulator over HTTP: GET /v1/events, types and created
filters, pagination, delivery_success, and the cursor."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web
from nats.aio.client import Client

from payplane.events.testing import eventually
from payplane.stripe_gateway import GatewayConfig, StripeGateway
from payplane.webhooks import (
    KeyValueCursor,
    WebhookBackfill,
    backfill_events,
    create_webhook_app,
)
from payplane.webhooks.testing import RecordingPublish
from stripe_emulator.config import Config
from stripe_emulator.testing import TEST_KEY, EmulatorHandle, running_emulator

TYPES = ["payment_intent.succeeded", "charge.succeeded"]


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorHandle]:
    with running_emulator(Config(global_rate=None, endpoint_rate=None, seed=8)) as emu:
        yield emu


@pytest.fixture
def emu(emulator: EmulatorHandle) -> Iterator[EmulatorHandle]:
    emulator.control.reset()
    emulator.control.configure(
        webhook_retry_base_s=0.05, webhook_retry_max_s=0.1, webhook_max_attempts=2
    )
    yield emulator
    emulator.control.clear_faults()


@pytest.fixture
async def gateway(emu: EmulatorHandle) -> AsyncIterator[StripeGateway]:
    gw = StripeGateway(GatewayConfig(api_key=TEST_KEY, base_url=emu.url, max_requests_per_s=500))
    try:
        yield gw
    finally:
        await gw.aclose()


def _pay(emu: EmulatorHandle, n: int) -> str:
    intent = emu.stripe_client(TEST_KEY).v1.payment_intents.create(
        params={
            "amount": 1_000 + n,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
        }
    )
    return str(intent.id)


def _events(emu: EmulatorHandle, types: list[str]) -> list[dict[str, Any]]:
    page = emu.stripe_client(TEST_KEY).v1.events.list(params={"types": types, "limit": 100})
    return [e.to_dict() for e in page.data]


async def test_lists_the_services_types_in_the_window_across_pages(
    emu: EmulatorHandle, gateway: StripeGateway
) -> None:
    for n in range(3):
        _pay(emu, n)
    publish = RecordingPublish()
    now = emu.control.now()
    result = await backfill_events(
        gateway, publish, TYPES, since=now - 60, until=now + 1, page_size=2
    )
    expected = {e["id"]: e["type"] for e in _events(emu, TYPES)}
    assert len(expected) == 6  # a payment_intent.succeeded and a charge.succeeded each
    assert {eid: etype for eid, etype, _ in publish.calls} == expected
    assert result.listed == result.published == 6
    # The body is the event as Stripe has it, the way a webhook would carry it.
    first_id, _, raw = publish.calls[0]
    body = json.loads(raw)
    assert body["id"] == first_id and body["object"] == "event" and body["data"]["object"]

    assert (await backfill_events(gateway, RecordingPublish(), TYPES, since=now + 100)).listed == 0


async def test_more_types_than_stripe_accepts_in_one_list_are_listed_in_groups(
    emu: EmulatorHandle, gateway: StripeGateway
) -> None:
    _pay(emu, 1)
    many = [f"invoice.fake_{i}" for i in range(25)] + TYPES
    publish = RecordingPublish()
    now = emu.control.now()
    await backfill_events(gateway, publish, many, since=now - 60, until=now + 1)
    assert sorted(t for _, t, _ in publish.calls) == sorted(TYPES)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _intents(publish: RecordingPublish) -> set[str]:
    """The PaymentIntents the published events are about."""
    objects = [json.loads(raw)["data"]["object"] for _, _, raw in publish.calls]
    return {str(o.get("payment_intent") or o["id"]) for o in objects}


async def _settled(emu: EmulatorHandle) -> None:
    async def settled() -> bool:
        return not any(e.get("pending_webhooks") for e in _events(emu, TYPES))

    await eventually(settled)


async def test_only_undelivered_events_are_republished_and_the_cursor_moves(
    emu: EmulatorHandle, gateway: StripeGateway, nats_client: Client
) -> None:
    """The endpoint is down beyond Stripe's retries for the first payment, up for the second:
    the periodic backfill publishes the first payment's events only."""
    received = RecordingPublish()
    port = _free_port()
    endpoint = emu.stripe_client(TEST_KEY).v1.webhook_endpoints.create(
        params={"url": f"http://127.0.0.1:{port}/webhooks/stripe", "enabled_events": TYPES}
    )
    runner = web.AppRunner(create_webhook_app([str(endpoint.secret)], received))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        emu.control.faults(webhook_outage=[str(endpoint.id)])
        lost = _pay(emu, 1)
        await _settled(emu)  # given up after webhook_max_attempts
        emu.control.clear_faults()
        delivered = _pay(emu, 2)
        await _settled(emu)
        assert _intents(received) == {delivered}

        async def stripe_now() -> float:
            return float(emu.control.now()) + 1

        cursor = KeyValueCursor(nats_client.jetstream(), key=f"test-{time.monotonic_ns()}")
        publish = RecordingPublish()
        backfill = WebhookBackfill(
            gateway, publish, TYPES, cursor=cursor, settle_s=0, clock=stripe_now
        )
        first = await backfill.run_once()
        assert _intents(publish) == {lost}
        assert first.published == 2
        assert await cursor.load() == first.until
        # The next run starts from the cursor (less the overlap) and finds the same two
        # undelivered events again: JetStream's window and the inbox drop them.
        second = await backfill.run_once()
        assert second.since == first.until - 600 and second.published == 2
    finally:
        await runner.cleanup()
