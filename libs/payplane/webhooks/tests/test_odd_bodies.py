"""Validly signed bodies that are not Stripe events (issue 8, defect 9): 400 and nothing
published, never 500. (The fuzz suite in tests/fuzz sends the same kind through checkout.)"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payplane.webhooks import create_webhook_app
from payplane.webhooks.testing import RecordingPublish, event_body, sign_header

SECRET = "whsec_odd_bodies"
PATH = "/webhooks/stripe"


@pytest.fixture
async def ingress() -> AsyncIterator[
    tuple[TestClient[web.Request, web.Application], RecordingPublish]
]:
    publish = RecordingPublish()
    client = TestClient(TestServer(create_webhook_app([SECRET], publish)))
    await client.start_server()
    try:
        yield client, publish
    finally:
        await client.close()


async def _post(client: TestClient[web.Request, web.Application], raw: bytes) -> int:
    resp = await client.post(PATH, data=raw, headers={"Stripe-Signature": sign_header(raw, SECRET)})
    return resp.status


def _event(**overrides: Any) -> bytes:
    event = json.loads(event_body("evt_odd", "charge.succeeded", id="ch_1", object="charge"))
    event.update(overrides)
    return json.dumps(event).encode()


DEEP = b'{"id":"evt_deep","type":"charge.succeeded","data":{"object":' + b"[" * 100_000


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"[" * 200_000, id="deep-list"),
        pytest.param(b'{"a":' * 30_000 + b"1" + b"}" * 30_000, id="deep-object"),
        pytest.param(DEEP + b"]" * 100_000 + b"}}", id="deep-inside-an-event"),
        pytest.param(
            _event(data={"object": {"id": "ch_1", "nested": json.loads("[" * 40 + "]" * 40)}}),
            id="deeper-than-stripe-nests",
        ),
        pytest.param(b'{"id":"evt_1","type":"a.b","created":' + b"9" * 5_000 + b"}", id="huge-int"),
        pytest.param(_event(created=1e400), id="infinite-created"),
        pytest.param(_event(created="yesterday"), id="created-a-string"),
        pytest.param(_event(created=True), id="created-a-bool"),
        pytest.param(_event(data=[1, 2]), id="data-a-list"),
        pytest.param(_event(data={"object": "ch_1"}), id="data-object-a-string"),
        pytest.param(_event(data={"object": {"id": 5}}), id="object-id-a-number"),
        pytest.param(_event(data={"object": {"object": ["charge"]}}), id="object-kind-a-list"),
        pytest.param(_event(data={"object": {}, "previous_attributes": 3}), id="previous-a-number"),
        pytest.param(_event(object="charge"), id="not-an-event-object"),
        pytest.param(_event(type="a" * 300), id="type-too-long"),
        pytest.param(_event(id="evt_\u00e9"), id="unicode-id"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
    ],
)
async def test_a_signed_body_that_is_no_stripe_event_is_400(
    ingress: tuple[TestClient[web.Request, web.Application], RecordingPublish], raw: bytes
) -> None:
    client, publish = ingress
    assert await _post(client, raw) == 400
    assert publish.calls == []


async def test_an_event_at_stripes_depth_passes(
    ingress: tuple[TestClient[web.Request, web.Application], RecordingPublish],
) -> None:
    client, publish = ingress
    nested: Any = {"leaf": 1}
    for _ in range(10):
        nested = {"inner": [nested]}
    raw = _event(data={"object": {"id": "ch_1", "object": "charge", "x": nested}})
    assert await _post(client, raw) == 200
    assert len(publish.calls) == 1


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    body=st.one_of(
        JSON,
        st.fixed_dictionaries(
            {"id": st.text(max_size=12), "type": st.text(max_size=12), "data": JSON},
            optional={"object": JSON, "created": JSON},
        ),
        st.fixed_dictionaries(
            {
                "id": st.just("evt_1"),
                "type": st.just("charge.succeeded"),
                "data": st.fixed_dictionaries(
                    {"object": st.dictionaries(st.text(max_size=8), JSON)}
                ),
            }
        ),
    )
)
async def test_any_signed_json_is_answered_never_500(
    ingress: tuple[TestClient[web.Request, web.Application], RecordingPublish], body: Any
) -> None:
    client, publish = ingress
    before = len(publish.calls)
    raw = json.dumps(body, allow_nan=True).encode()
    status = await _post(client, raw)
    assert status in (200, 400)
    assert (len(publish.calls) > before) == (status == 200)
