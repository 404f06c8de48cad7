"""A new payment's input rules (issue 8, defect 7), and what happens when Stripe refuses a
creation anyway: the payment fails with Stripe's reason instead of staying PENDING."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from checkout.adapters.stripe_payments import StripePayments
from checkout.bootstrap import MIGRATIONS
from checkout.domain.errors import PaymentStateError
from checkout.domain.payment import CaptureMethod, Payment, Status
from checkout.domain.validation import (
    CURRENCIES,
    MAX_METADATA_KEYS,
    MIN_AMOUNT,
    minimum_amount,
    validate_new_payment,
)
from checkout.service.handlers import Checkout, NewPayment
from payplane.db import create_engine, run_migrations, session_factory
from payplane.events.testing import FakeOutbox
from payplane.stripe_gateway import InvalidRequest
from payplane.stripe_gateway.testing import FakeGateway

CARD = {"id": "pm_1", "object": "payment_method", "card": {"fingerprint": "fp1", "country": "US"}}


def _problems(**overrides: Any) -> list[str]:
    fields: dict[str, Any] = {
        "amount": 1_000,
        "currency": "usd",
        "payment_method": "pm_card_visa",
        "metadata": {},
        "customer_ref": "cust-1",
    }
    fields.update(overrides)
    return validate_new_payment(
        fields.pop("amount"), fields.pop("currency"), fields.pop("payment_method"),
        fields.pop("metadata"), **fields,
    )  # fmt: skip


def test_a_plain_payment_is_valid() -> None:
    assert _problems() == []
    assert (
        _problems(
            description="d" * 1_000,
            metadata={f"k{i}": "v" * 500 for i in range(MAX_METADATA_KEYS)},
            customer_ref="c" * 255,
            email="a@example.com",
            ip_address="2001:db8::1",
            ip_country="fr",
            return_url="https://shop.example/return?x=1",
            customer_created_at=1_700_000_000.5,
        )
        == []
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amount": 49}, "amount.amount_minor"),
        ({"amount": 29, "currency": "gbp"}, "amount.amount_minor"),
        ({"amount": 49, "currency": "jpy"}, "amount.amount_minor"),
        ({"amount": 100_000_000}, "amount.amount_minor"),
        ({"metadata": {f"k{i}": "v" for i in range(MAX_METADATA_KEYS + 1)}}, "metadata"),
        ({"metadata": {"payplane_payment_id": "pay_x"}}, "metadata"),
        ({"metadata": {"k" * 41: "v"}}, "metadata"),
        ({"metadata": {"a[b]": "v"}}, "metadata"),
        ({"metadata": {"": "v"}}, "metadata"),
        ({"metadata": {"k": "v" * 501}}, "metadata"),
        ({"customer_ref": ""}, "customer_ref"),
        ({"customer_ref": "c" * 256}, "customer_ref"),
        ({"customer_ref": "c\x00"}, "customer_ref"),
        ({"description": "d" * 1_001}, "description"),
        ({"payment_method": "4242 4242 4242 4242"}, "payment_method"),
        ({"payment_method": "card_1234"}, "payment_method"),
        ({"payment_method": "pm_" + "x" * 200}, "payment_method"),
        ({"ip_address": "not an ip"}, "ip_address"),
        ({"ip_country": "FRA"}, "ip_country"),
        ({"return_url": "not a url"}, "return_url"),
        ({"return_url": "https://x/" + "y" * 3_000}, "return_url"),
        ({"customer_created_at": 2.0**62}, "customer_created_at"),
        ({"customer_created_at": -1.0}, "customer_created_at"),
    ],
)
def test_each_rule_names_its_field(overrides: dict[str, Any], field: str) -> None:
    problems = _problems(**overrides)
    assert problems and all(p.startswith(field) for p in problems), problems


def test_a_card_number_is_never_repeated() -> None:
    (problem,) = _problems(payment_method="4000002500003155")
    assert "4000002500003155" not in problem and "card number" in problem


def test_every_currency_has_a_minimum_at_least_stripes_default() -> None:
    assert set(MIN_AMOUNT) == set(CURRENCIES)
    assert all(minimum_amount(c) >= 30 for c in CURRENCIES)


@given(st.sampled_from(sorted(CURRENCIES)), st.integers(-(2**63), 2**63 - 1))
def test_an_amount_passes_exactly_within_stripes_bounds(currency: str, amount: int) -> None:
    ok = minimum_amount(currency) <= amount <= 99_999_999
    assert (_problems(amount=amount, currency=currency) == []) is ok


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[Checkout, FakeGateway, FakeOutbox]]:
    url = f"sqlite:///{tmp_path / 'checkout.db'}"
    await run_migrations(url, MIGRATIONS)
    engine = create_engine(url)
    gateway = FakeGateway()
    outbox = FakeOutbox()
    try:
        yield Checkout(session_factory(engine), StripePayments(gateway), outbox), gateway, outbox
    finally:
        await engine.dispose()


async def test_stripe_refusing_a_creation_fails_the_payment_with_its_reason(
    world: tuple[Checkout, FakeGateway, FakeOutbox],
) -> None:
    checkout, gateway, outbox = world
    gateway.respond("payment_methods.retrieve", CARD)
    gateway.respond(
        "payment_intents.create",
        InvalidRequest(
            "Amount must be at least 0.50 usd", http_status=400, code="amount_too_small"
        ),
    )
    payment = await checkout.create_payment(
        "storefront",
        NewPayment(
            amount=5_000, currency="usd", customer_ref="cust-1", payment_method="pm_card_visa"
        ),
    )
    assert payment.status is Status.FAILED and not payment.stripe_payment_intent_id
    assert payment.decline is not None and payment.decline.code == "amount_too_small"
    assert "0.50 usd" in payment.decline.message
    assert [e.type for e in outbox.envelopes if e.type.startswith("payment.")] == ["payment.failed"]
    stored = await checkout.get_payment(payment.id)
    assert stored.status is Status.FAILED and stored.caller == "storefront"


async def test_stripe_is_never_addressed_with_an_empty_intent_id(
    world: tuple[Checkout, FakeGateway, FakeOutbox],
) -> None:
    checkout, gateway, _ = world
    bare = Payment("pay_1", 1_000, "usd", "c", "pm_card_visa", CaptureMethod.AUTOMATIC)
    with pytest.raises(PaymentStateError):
        await checkout.stripe.confirm(bare, "key")
    with pytest.raises(PaymentStateError):
        await checkout.stripe.cancel("", "", "key")
    with pytest.raises(PaymentStateError):
        await checkout.stripe.capture("", 0, "key")
    assert gateway.calls == []
