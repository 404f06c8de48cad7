from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import stripe
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from nats.aio.client import Client
from nats.js import JetStreamContext

from payplane.events import PublishError, ensure_stream
from payplane.webhooks import Publish, create_webhook_app, jetstream_publisher
from payplane.webhooks.testing import RecordingPublish, event_body, sign_header

SECRET = "whsec_current_secret_value"
PATH = "/webhooks/stripe"

MakeClient = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    clients: list[TestClient[web.Request, web.Application]] = []

    async def make(publish: Publish, **kwargs: object) -> TestClient[web.Request, web.Application]:
        app = create_webhook_app([SECRET], publish, **kwargs)
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


def _stripe_signed(
    raw: bytes, secret: str = SECRET, timestamp: int | None = None
) -> dict[str, str]:
    header = stripe.WebhookSignature.generate_signature_header(
        raw.decode(), secret, timestamp=timestamp
    )
    return {"Stripe-Signature": header, "Content-Type": "application/json"}


async def test_signed_event_is_published_once_then_answered_200(make_client: MakeClient) -> None:
    publish = RecordingPublish()
    client = await make_client(publish)
    raw = event_body("evt_1", "payment_intent.succeeded", id="pi_1")
    resp = await client.post(PATH, data=raw, headers=_stripe_signed(raw))
    assert resp.status == 200
    assert publish.calls == [("evt_1", "payment_intent.succeeded", raw)]


async def test_bad_signature_is_400_and_publishes_nothing(make_client: MakeClient) -> None:
    publish = RecordingPublish()
    client = await make_client(publish)
    raw = event_body("evt_1", "charge.succeeded")
    for headers in (
        _stripe_signed(raw, secret="whsec_someone_else"),
        {"Stripe-Signature": sign_header(raw, SECRET).replace("v1=", "v0=")},
        {},
    ):
        resp = await client.post(PATH, data=raw, headers=headers)
        assert resp.status == 400
    assert publish.calls == []


async def test_two_v1_values_one_valid_is_accepted(make_client: MakeClient) -> None:
    publish = RecordingPublish()
    client = await make_client(publish)
    raw = event_body("evt_roll", "invoice.paid")
    header = sign_header(raw, SECRET, extra_v1=["0" * 64])
    resp = await client.post(PATH, data=raw, headers={"Stripe-Signature": header})
    assert resp.status == 200 and len(publish.calls) == 1


async def test_old_timestamp_is_refused(make_client: MakeClient) -> None:
    publish = RecordingPublish()
    client = await make_client(publish)
    raw = event_body("evt_old", "charge.succeeded")
    resp = await client.post(
        PATH, data=raw, headers=_stripe_signed(raw, timestamp=int(time.time()) - 301)
    )
    assert resp.status == 400 and publish.calls == []


async def test_oversize_body_is_413(make_client: MakeClient) -> None:
    publish = RecordingPublish()
    client = await make_client(publish, max_body_bytes=1024)
    raw = event_body("evt_big", "charge.succeeded", blob="x" * 2048)
    resp = await client.post(PATH, data=raw, headers=_stripe_signed(raw))
    assert resp.status == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        for i in range(0, len(raw), 256):
            yield raw[i : i + 256]

    resp = await client.post(PATH, data=chunks(), headers=_stripe_signed(raw))
    assert resp.status == 413
    assert publish.calls == []


async def test_unparseable_or_foreign_body_is_400(make_client: MakeClient) -> None:
    publish = RecordingPublish()
    client = await make_client(publish)
    for raw in (
        b"not json",
        b"[1,2]",
        b'{"type":"charge.succeeded"}',
        b'{"id":"evt 1","type":"a.b"}',
    ):
        resp = await client.post(PATH, data=raw, headers=_stripe_signed(raw))
        assert resp.status == 400
    assert publish.calls == []


async def test_publish_failure_is_503(make_client: MakeClient) -> None:
    publish = RecordingPublish(fail_with=PublishError("no ack"))
    client = await make_client(publish)
    raw = event_body("evt_1", "charge.succeeded")
    resp = await client.post(PATH, data=raw, headers=_stripe_signed(raw))
    assert resp.status == 503


async def test_slow_publish_times_out_as_503(make_client: MakeClient) -> None:
    async def hangs(event_id: str, event_type: str, raw: bytes) -> None:
        await asyncio.Event().wait()

    client = await make_client(hangs, publish_timeout_s=0.2)
    raw = event_body("evt_1", "charge.succeeded")
    resp = await client.post(PATH, data=raw, headers=_stripe_signed(raw))
    assert resp.status == 503


async def test_body_and_secret_never_logged(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = await make_client(RecordingPublish(fail_with=RuntimeError("boom")))
    raw = event_body("evt_log", "charge.succeeded", card="sensitive-card-data")
    await client.post(PATH, data=raw, headers=_stripe_signed(raw))
    bad = _stripe_signed(raw, secret="whsec_wrong")
    await client.post(PATH, data=raw, headers=bad)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "evt_log" in text  # the log does say what happened
    for secret in ("sensitive-card-data", SECRET, "whsec_wrong", bad["Stripe-Signature"]):
        assert secret not in text


# -- against JetStream --------------------------------------------------------------------------


async def _stream(js: JetStreamContext) -> tuple[str, str]:
    token = uuid.uuid4().hex[:10]
    name, prefix = f"WH{token.upper()}", f"stripe{token}"
    await ensure_stream(js, name, [f"{prefix}.>"])
    return name, prefix


async def test_jetstream_publish_then_200_and_redelivery_stored_once(
    make_client: MakeClient, nats_client: Client
) -> None:
    js = nats_client.jetstream()
    stream, prefix = await _stream(js)
    client = await make_client(jetstream_publisher(js, prefix))
    raw = event_body("evt_js_1", "charge.refunded", id="ch_1")

    first = await client.post(PATH, data=raw, headers=_stripe_signed(raw))
    # Stripe retries with a fresh signature and timestamp.
    again = await client.post(
        PATH, data=raw, headers=_stripe_signed(raw, timestamp=int(time.time()) + 1)
    )

    assert first.status == 200 and again.status == 200
    info = await js.stream_info(stream)
    assert info.state.messages == 1
    msg = await js.get_last_msg(stream, f"{prefix}.charge.refunded")
    assert msg.data == raw
    assert (msg.headers or {})["Nats-Msg-Id"] == "evt_js_1"


async def test_jetstream_bad_signature_leaves_the_stream_empty(
    make_client: MakeClient, nats_client: Client
) -> None:
    js = nats_client.jetstream()
    stream, prefix = await _stream(js)
    client = await make_client(jetstream_publisher(js, prefix))
    raw = event_body("evt_js_bad", "charge.succeeded")
    resp = await client.post(PATH, data=raw, headers=_stripe_signed(raw, secret="whsec_nope"))
    assert resp.status == 400
    assert (await js.stream_info(stream)).state.messages == 0


async def test_jetstream_without_a_stream_is_503(
    make_client: MakeClient, nats_client: Client
) -> None:
    js = nats_client.jetstream()
    client = await make_client(jetstream_publisher(js, f"nostream{uuid.uuid4().hex[:8]}"))
    raw = event_body("evt_js_lost", "charge.succeeded")
    resp = await client.post(PATH, data=raw, headers=_stripe_signed(raw))
    assert resp.status == 503
