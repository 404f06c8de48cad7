"""checkout's Stripe webhook route fed validly signed odd JSON (issue 8, the fuzz suite):
deep nesting, huge numbers, wrong types, unicode, missing fields, and event-shaped bodies
naming real and invented objects. Never a 500; afterwards the consumer still applies real
events, and no payment has moved away from what Stripe says of it."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest_asyncio
from hypothesis import given
from hypothesis import strategies as st

from checkout.entrypoints.stripe_events import EVENT_TYPES
from payplane.checkout.v1 import checkout_pb2
from payplane.common.v1 import common_pb2
from payplane.grpckit import idempotency_metadata, new_idempotency_key
from payplane.webhooks.testing import sign_header
from tests.e2e.harness import Platform, eventually

from .settings import FUZZ

_STATUS_OF_INTENT = {
    "succeeded": checkout_pb2.PAYMENT_STATUS_SUCCEEDED,
    "requires_capture": checkout_pb2.PAYMENT_STATUS_REQUIRES_CAPTURE,
    "requires_action": checkout_pb2.PAYMENT_STATUS_REQUIRES_ACTION,
    "canceled": checkout_pb2.PAYMENT_STATUS_CANCELED,
}

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([10**400, -(10**30), 2**63, 2**64 + 1])
    | st.floats()
    | st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
    | st.sampled_from(["\U0001f4b3" * 50, "é" * 500, "\x00", "x" * 5_000])
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=25,
)
KINDS = ["payment_intent", "charge", "dispute", "radar.early_fraud_warning", "review", "refund"]


class Ingress:
    def __init__(self, platform: Platform, session: aiohttp.ClientSession) -> None:
        app = platform.checkout_app
        self.url = f"http://127.0.0.1:{app.webhook_port}/webhooks/stripe"
        self.secret = app.settings.webhook_secrets[0]
        self.session = session
        self.platform = platform
        self.known: list[str] = []  # ids of real Stripe objects (intents, charges)

    async def post(self, raw: bytes) -> int:
        headers = {"Stripe-Signature": sign_header(raw, self.secret)}
        async with self.session.post(self.url, data=raw, headers=headers) as resp:
            return resp.status


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def ingress(module_platform: Platform) -> AsyncIterator[Ingress]:
    async with aiohttp.ClientSession() as session:
        found = Ingress(module_platform, session)
        for pm in ("pm_card_visa", "pm_card_threeDSecure2Required"):
            made = await module_platform.checkout().CreatePayment(
                checkout_pb2.CreatePaymentRequest(
                    amount=common_pb2.Money(amount_minor=3_000, currency="usd"),
                    customer_ref="cust-webhook-fuzz",
                    payment_method=pm,
                ),
                metadata=idempotency_metadata(new_idempotency_key()),
                timeout=30,
            )
            found.known += [made.stripe_payment_intent_id, made.stripe_charge_id]
        found.known = [k for k in found.known if k]
        yield found


def _deep(depth: int, opener: str) -> bytes:
    closer = "]" if opener == "[" else "}"
    inner = (opener if opener == "[" else '{"a":') * depth
    head = '{"id":"evt_deep","type":"charge.updated","data":{"object":'
    return f"{head}{inner}1{closer * depth}}}}}".encode()


def _event_bodies(known: list[str]) -> st.SearchStrategy[bytes]:
    ids = st.sampled_from(known) | st.text(max_size=12) | JSON
    obj = st.fixed_dictionaries(
        {},
        optional={
            "id": ids,
            "object": st.sampled_from(KINDS) | JSON,
            "payment_intent": ids,
            "charge": ids,
            "amount": JSON,
            "metadata": JSON,
            "status": JSON,
        },
    )
    event_id = st.builds(lambda n: f"evt_fuzz_{n}", st.integers(0, 10**9))
    # A well-formed shell around odd contents: these reach the consumer.
    shell = st.fixed_dictionaries(
        {
            "id": event_id,
            "object": st.just("event"),
            "type": st.sampled_from(EVENT_TYPES),
            "created": st.just(int(time.time())),
            "data": st.fixed_dictionaries({"object": obj}),
        }
    )
    odd_shell = st.fixed_dictionaries(
        {
            "id": event_id | st.text(max_size=8),
            "type": st.sampled_from(EVENT_TYPES) | st.text(max_size=20),
            "data": st.fixed_dictionaries({"object": obj}) | JSON,
        },
        optional={"object": st.just("event") | JSON, "created": st.just(int(time.time())) | JSON},
    )
    as_json = st.one_of(shell, shell, odd_shell, JSON).map(
        lambda v: json.dumps(v, allow_nan=True).encode()
    )
    deep = st.builds(_deep, st.integers(20, 20_000), st.sampled_from(["[", "{"]))
    return as_json | deep | st.binary(max_size=64)


@FUZZ
@given(data=st.data())
async def test_signed_odd_bodies_never_answer_500(ingress: Ingress, data: st.DataObject) -> None:
    raw = data.draw(_event_bodies(ingress.known), label="body")
    status = await ingress.post(raw)
    assert status in (200, 400, 413), f"{status} for a body of {len(raw)} bytes"
    tasks = ingress.platform.checkout_app.tasks
    assert not any(t.done() for t in tasks), [t for t in tasks if t.done()]


async def test_after_the_fuzz_real_events_still_apply(ingress: Ingress) -> None:
    """Last in the module: a 3-D Secure payment still completes through its webhooks, and
    every payment still says what Stripe says of it."""
    p = ingress.platform
    made = await p.pay(new_idempotency_key(), pm="pm_card_threeDSecure2Required")
    assert made.status == checkout_pb2.PAYMENT_STATUS_REQUIRES_ACTION
    p.emulator.control.call(
        "POST",
        f"/_emulator/payment_intents/{made.stripe_payment_intent_id}/three_d_secure",
        {"outcome": "pass"},
    )
    stub = p.checkout("admin")

    async def status() -> Any:
        return (await stub.GetPayment(checkout_pb2.GetPaymentRequest(payment_id=made.id))).status

    await eventually(status, lambda s: s == checkout_pb2.PAYMENT_STATUS_SUCCEEDED)
    listed = await stub.ListPayments(checkout_pb2.ListPaymentsRequest())
    for payment in listed.payments:
        intent = p.stripe.v1.payment_intents.retrieve(payment.stripe_payment_intent_id)
        assert payment.status == _STATUS_OF_INTENT[intent.status], payment.id
