"""checkout's use cases with fakes: a scripted Stripe gateway and an in-memory outbox
(the database is a real SQLite file, migrated as in production)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from checkout.adapters.stripe_payments import StripePayments
from checkout.bootstrap import MIGRATIONS
from checkout.domain.errors import RefundNotAllowed, StripeUnreachable
from checkout.domain.payment import Status
from checkout.service.handlers import Checkout, NewPayment
from payplane.checkout.v1 import events_pb2
from payplane.db import create_engine, run_migrations, session_factory
from payplane.events.testing import FakeOutbox
from payplane.stripe_gateway import CardDeclined, StripeUnavailable, deterministic_key
from payplane.stripe_gateway.testing import FakeGateway

CARD = {"id": "pm_1", "object": "payment_method", "card": {"fingerprint": "fp1", "country": "US"}}


def _intent(status: str, amount: int = 5_000) -> dict[str, Any]:
    return {
        "id": "pi_1",
        "object": "payment_intent",
        "status": status,
        "amount": amount,
        "currency": "usd",
        "client_secret": "pi_1_secret",
        "next_action": None,
        "last_payment_error": None,
        "latest_charge": {
            "id": "ch_1",
            "object": "charge",
            "outcome": {"risk_level": "normal", "risk_score": 12, "type": "authorized"},
            "payment_method_details": {"card": {"fingerprint": "fp1", "country": "US"}},
            "balance_transaction": {
                "id": "txn_1",
                "currency": "usd",
                "amount": amount,
                "fee": 175,
                "net": amount - 175,
                "exchange_rate": None,
                "available_on": 1_800_000_000,
            },
        },
    }


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[Checkout, FakeGateway, FakeOutbox]]:
    url = f"sqlite:///{tmp_path / 'checkout.db'}"
    await run_migrations(url, MIGRATIONS)
    engine = create_engine(url)
    gateway = FakeGateway()
    outbox = FakeOutbox()
    checkout = Checkout(session_factory(engine), StripePayments(gateway), outbox)
    try:
        yield checkout, gateway, outbox
    finally:
        await engine.dispose()


def _new(amount: int = 5_000) -> NewPayment:
    return NewPayment(
        amount=amount, currency="usd", customer_ref="cust-1", payment_method="pm_card_visa"
    )


async def test_a_payment_succeeds_and_publishes_its_settlement(
    world: tuple[Checkout, FakeGateway, FakeOutbox],
) -> None:
    checkout, gateway, outbox = world
    gateway.respond("payment_methods.retrieve", CARD)
    gateway.respond("payment_intents.create", _intent("succeeded"))
    payment = await checkout.create_payment("storefront", _new())
    assert payment.status is Status.SUCCEEDED
    assert payment.stripe_payment_intent_id == "pi_1" and payment.stripe_charge_id == "ch_1"
    # Stripe's key is derived from the payment, so a resumed attempt resends the same one.
    assert gateway.keys("payment_intents.create") == [
        deterministic_key("checkout", payment.id, "create_intent")
    ]
    (subject, envelope) = next((s, e) for s, e in outbox.added if e.type == "payment.succeeded")
    assert subject == "checkout.payment.succeeded"
    assert envelope.event_id == f"{payment.id}.succeeded"
    paid = events_pb2.PaymentSucceeded.FromString(envelope.payload)
    assert (paid.settlement.gross.amount_minor, paid.settlement.fee.amount_minor) == (5_000, 175)


async def test_a_decline_is_a_failed_payment_not_an_error(
    world: tuple[Checkout, FakeGateway, FakeOutbox],
) -> None:
    checkout, gateway, outbox = world
    gateway.respond("payment_methods.retrieve", CARD)
    gateway.respond(
        "payment_intents.create",
        CardDeclined(
            "Your card has insufficient funds.",
            decline_code="insufficient_funds",
            payment_intent_id="pi_1",
            charge_id="ch_1",
        ),
    )
    declined = _intent("requires_payment_method")
    declined["last_payment_error"] = {
        "code": "card_declined",
        "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds.",
    }
    gateway.respond("payment_intents.retrieve", declined)  # Radar's view of the failed charge
    payment = await checkout.create_payment("storefront", _new())
    assert payment.status is Status.FAILED
    assert payment.decline is not None and payment.decline.decline_code == "insufficient_funds"
    assert [e.type for e in outbox.envelopes if e.type.startswith("payment.")] == ["payment.failed"]


async def test_stripe_unreachable_leaves_the_payment_pending_for_a_retry(
    world: tuple[Checkout, FakeGateway, FakeOutbox],
) -> None:
    checkout, gateway, outbox = world
    gateway.respond("payment_methods.retrieve", CARD)
    gateway.respond("payment_intents.create", StripeUnavailable("down", ambiguous=True))
    with pytest.raises(StripeUnreachable):
        await checkout.create_payment("storefront", _new())
    payments, _ = await checkout.list_payments(
        customer_ref="cust-1", status=None, page_size=10, page_token=""
    )
    assert [p.status for p in payments] == [Status.PENDING]
    assert not [e for e in outbox.envelopes if e.type.startswith("payment.")]


async def test_an_over_refund_is_refused_before_stripe(
    world: tuple[Checkout, FakeGateway, FakeOutbox],
) -> None:
    checkout, gateway, _ = world
    gateway.respond("payment_methods.retrieve", CARD)
    gateway.respond("payment_intents.create", _intent("succeeded"))
    payment = await checkout.create_payment("storefront", _new())
    with pytest.raises(RefundNotAllowed):
        await checkout.refund_payment("storefront", payment.id, 5_001, "requested_by_customer")
    assert gateway.calls_to("refunds.create") == []
