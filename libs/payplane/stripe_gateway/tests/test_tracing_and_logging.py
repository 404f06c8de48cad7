"""A client span per call; no key or card number in logs, errors or reprs."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from payplane.stripe_gateway import (
    AuthFailed,
    CardDeclined,
    GatewayConfig,
    InvalidRequest,
    Lane,
)
from payplane.stripe_gateway.testing import stripe_error

from ._rig import Obj, Response, Rig, script


async def test_a_successful_call_is_one_client_span(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    fn = script(stripe_error(500, request_id="req_first"), Obj("cus_1", Response("req_last")))
    await rig.gateway.call("customers.create", fn, idempotency_key="k-1", lane=Lane.BACKGROUND)
    (span,) = rig.spans.get_finished_spans()
    assert span.name == "stripe customers.create" and span.kind is SpanKind.CLIENT
    attrs = dict(span.attributes or {})
    assert attrs["stripe.operation"] == "customers.create"
    assert attrs["stripe.idempotency_key"] == "k-1"
    assert attrs["stripe.request_id"] == "req_last"
    assert attrs["stripe.attempts"] == 2
    assert attrs["http.status_code"] == 200
    assert attrs["stripe.lane"] == "background"
    assert span.status.status_code is not StatusCode.ERROR
    assert [e.name for e in span.events] == ["stripe.retry"]


async def test_a_failed_call_records_the_error(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    fn = script(stripe_error(402, decline_code="lost_card", request_id="req_declined"))
    with pytest.raises(CardDeclined):
        await rig.gateway.call("payment_intents.create", fn, idempotency_key="k-2")
    (span,) = rig.spans.get_finished_spans()
    attrs = dict(span.attributes or {})
    assert span.status.status_code is StatusCode.ERROR
    assert attrs["stripe.request_id"] == "req_declined" and attrs["http.status_code"] == 402
    assert attrs["error.type"] == "CardDeclined" and attrs["stripe.attempts"] == 1
    assert any(e.name == "exception" for e in span.events)


async def test_the_span_is_current_inside_fn(make_rig: Callable[..., Rig]) -> None:
    from opentelemetry import trace

    rig = make_rig()
    inside: list[str] = []

    async def fn(client: object, options: object) -> Obj:
        inside.append(trace.get_current_span().get_span_context().span_id)
        return Obj("x")

    await rig.gateway.call("customers.retrieve", fn, idempotency_key=None)
    (span,) = rig.spans.get_finished_spans()
    assert inside == [span.context.span_id]


def test_the_config_repr_hides_the_key() -> None:
    config = GatewayConfig(api_key="sk_live_abcdefghijklmnop1234")
    assert "abcdefghijklmnop" not in repr(config)


async def test_no_key_or_card_number_in_logs_or_errors(
    make_rig: Callable[..., Rig], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rig = make_rig(api_key="sk_test_verysecretkey9876", max_attempts=2)
    auth = stripe_error(401, message="Invalid API Key provided: sk_test_verysecretkey9876")
    with pytest.raises(AuthFailed) as denied:
        await rig.gateway.call("customers.create", script(auth), idempotency_key="k")
    echo = stripe_error(400, message="Invalid integer: 4242424242424242", param="amount")
    with pytest.raises(InvalidRequest) as invalid:
        await rig.gateway.call(
            "payment_intents.create", script(stripe_error(500), echo), idempotency_key="k2"
        )
    texts = [caplog.text, str(denied.value), repr(denied.value), str(invalid.value)]
    for span in rig.spans.get_finished_spans():
        texts += [str(e.attributes) for e in span.events]
        texts.append(str(span.status.description))
    joined = "\n".join(texts)
    assert "verysecretkey" not in joined and "sk_test_****9876" in str(denied.value)
    assert "4242424242424242" not in joined and "4242" in str(invalid.value)
    assert caplog.records, "the failures were logged"
