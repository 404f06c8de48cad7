"""The fraud history over a real database (SQLite and, with TEST_POSTGRES_URL, PostgreSQL):
a heavy customer at the extremes of the accepted amounts still gets decisions."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from checkout.adapters.fraud_history import FraudHistory
from checkout.adapters.stripe_payments import StripePayments
from checkout.adapters.tables import payments
from checkout.bootstrap import MIGRATIONS
from checkout.domain.payment import Status
from checkout.domain.validation import MAX_AMOUNT
from checkout.fraud.features import Signals, compute_features
from checkout.service.handlers import Checkout, NewPayment
from payplane.db import create_engine, run_migrations, session_factory
from payplane.db.testing import TestDatabase, db_url_fixture
from payplane.events.testing import FakeOutbox
from payplane.stripe_gateway.testing import FakeGateway

db_url = db_url_fixture()
CUSTOMER = "cust-heavy"
# Enough of the largest accepted amount that the sum of squares passes 2**63 (SQLite's
# INTEGER and PostgreSQL's BIGINT) about twice over.
HEAVY = 2 * (2**63 // MAX_AMOUNT**2) + 10


@pytest.fixture
async def sessions(db_url: TestDatabase) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await run_migrations(db_url.url, MIGRATIONS, schema=db_url.schema)
    engine = create_engine(db_url.url, schema=db_url.schema)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


def _row(i: int, amount: int, at: datetime) -> dict[str, Any]:
    return {
        "id": f"pay_heavy_{i:06d}",
        "caller": "storefront",
        "customer_ref": CUSTOMER,
        "amount": amount,
        "currency": "usd",
        "amount_refunded": 0,
        "amount_captured": amount,
        "payment_method": "pm_card_visa",
        "capture_method": "automatic",
        "description": "",
        "metadata": {},
        "status": Status.SUCCEEDED.value,
        "version": 0,
        "created_at": at,
        "updated_at": at,
        "card_fingerprint": "fp-heavy",
        "confirm_later": False,
    }


async def _heavy_history(sessions: async_sessionmaker[AsyncSession], smallest: int) -> None:
    """HEAVY payments of the largest accepted amount and `smallest` of the smallest (1)."""
    at = datetime.now(UTC)
    rows = [_row(i, MAX_AMOUNT, at) for i in range(HEAVY)]
    rows += [_row(HEAVY + i, 1, at) for i in range(smallest)]
    async with sessions.begin() as session:
        await session.execute(insert(payments), rows)


def _signals(amount: int) -> Signals:
    return Signals(
        amount=amount, currency="usd", customer_ref=CUSTOMER, card_fingerprint="fp-heavy"
    )


async def test_the_history_of_a_heavy_customer_loads_without_overflow(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _heavy_history(sessions, smallest=HEAVY)
    async with sessions() as session:
        history = await FraudHistory(session).load(_signals(MAX_AMOUNT), time.time())
    assert history.succeeded_count == 2 * HEAVY
    assert history.succeeded_sum == HEAVY * MAX_AMOUNT + HEAVY
    assert history.succeeded_sum_sq == pytest.approx(HEAVY * MAX_AMOUNT**2 + HEAVY, rel=1e-12)
    # Half the history at each extreme: the mean sits midway and one standard deviation away.
    big = compute_features(_signals(MAX_AMOUNT), history, time.time())["amount_zscore"]
    small = compute_features(_signals(1), history, time.time())["amount_zscore"]
    assert big == pytest.approx(1.0, abs=1e-6) and small == pytest.approx(-1.0, abs=1e-6)


async def test_a_heavy_customer_can_still_pay(sessions: async_sessionmaker[AsyncSession]) -> None:
    await _heavy_history(sessions, smallest=0)
    gateway = FakeGateway()
    gateway.respond(
        "payment_methods.retrieve",
        {"id": "pm_1", "card": {"fingerprint": "fp-heavy", "country": "US"}},
    )
    gateway.respond(
        "payment_intents.create",
        {"id": "pi_heavy", "object": "payment_intent", "status": "succeeded",
         "amount": MAX_AMOUNT, "currency": "usd", "latest_charge": None},
    )  # fmt: skip
    checkout = Checkout(sessions, StripePayments(gateway), FakeOutbox())
    paid = await checkout.create_payment(
        "storefront",
        NewPayment(amount=MAX_AMOUNT, currency="usd", customer_ref=CUSTOMER, payment_method="pm_1"),
    )
    assert paid.status is Status.SUCCEEDED
    (decision,) = [d for d in await checkout.decisions_for(paid.id) if d.stage == "pre_auth"]
    features = {f.name: f.value for f in decision.assessment.contributions}
    assert features["amount_zscore"] == 0.0  # the same amount as ever
