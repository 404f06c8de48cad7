"""The importer against a scripted Stripe (paged, newest first): a crash mid-window resumes at
the next page with nothing lost or doubled, later imports take only what is new; the matcher
on planted rows: pricing model with international and conversion, Stripe's own rate."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledger.adapters import tables
from ledger.adapters.stripe_mirror import bt_row
from ledger.adapters.stripe_reader import Page, StripeReader
from ledger.domain.pricing import PricingModel
from ledger.service.importer import BT_CURSOR, Importer
from ledger.service.reconcile import Reconciler
from payplane.db import create_engine, session_factory


class Crash(Exception):
    pass


class ScriptedStripe:
    """Lists balance transactions like Stripe: newest first, `starting_after`, created[gte]."""

    def __init__(self) -> None:
        self.bts: list[dict[str, Any]] = []
        self.fail_on_call: int | None = None
        self.calls = 0

    def add(self, n: int, created: int) -> None:
        for _ in range(n):
            i = len(self.bts)
            self.bts.append(
                {"id": f"txn_{i:06d}", "created": created, "available_on": created,
                 "status": "available", "type": "charge", "reporting_category": "charge",
                 "source": f"ch_{i}", "currency": "usd", "amount": 1_000, "fee": 59, "net": 941,
                 "exchange_rate": None}
            )  # fmt: skip

    async def balance_transactions(
        self,
        *,
        created_gte: int | None = None,
        created_lt: int | None = None,
        starting_after: str | None = None,
        payout: str | None = None,
        expand_source: bool = True,
        limit: int = 3,
    ) -> Page:
        self.calls += 1
        if self.fail_on_call == self.calls:
            raise Crash("the process died here")
        items = [
            b for b in reversed(self.bts)
            if (created_gte is None or b["created"] >= created_gte)
            and (created_lt is None or b["created"] < created_lt)
        ]  # fmt: skip
        if starting_after:
            idx = next(i for i, b in enumerate(items) if b["id"] == starting_after)
            items = items[idx + 1 :]
        return Page(items[:limit], len(items) > limit)


@pytest.fixture
async def sessions() -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine("sqlite:///:memory:")
    async with engine.begin() as conn:
        await conn.run_sync(tables.metadata.create_all)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(
            (
                await session.execute(select(func.count()).select_from(tables.stripe_bts))
            ).scalar_one()
        )


async def test_an_import_crashing_mid_window_resumes_without_loss_or_duplicates(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    stripe = ScriptedStripe()
    stripe.add(10, created=100)
    stripe.add(5, created=200)
    importer = Importer(sessions, StripeReader.__new__(StripeReader))
    importer.reader = stripe  # type: ignore[assignment]
    stripe.fail_on_call = 3  # two pages of three are in, then the crash
    with pytest.raises(Crash):
        await importer.balance_transactions()
    assert await count(sessions) == 6
    async with sessions() as session:
        cursor = (await session.execute(select(tables.import_cursors))).one()
    assert cursor.page_after is not None and cursor.window_gte == 0  # mid-window

    stripe.fail_on_call = None
    calls = stripe.calls
    assert await importer.balance_transactions() == 9  # the rest, from the next page
    assert await count(sessions) == 15
    assert stripe.calls - calls == 3  # pages 3, 4, 5: nothing fetched twice
    async with sessions() as session:
        cursor = (await session.execute(select(tables.import_cursors))).one()
    assert (cursor.name, cursor.created, cursor.last_id) == (BT_CURSOR, 200, "txn_000014")
    assert cursor.window_gte is None and cursor.page_after is None

    # Later: only the second at the cursor (the same second may gain rows) and what is newer.
    stripe.add(2, created=200)
    stripe.add(4, created=300)
    assert await importer.balance_transactions() == 6
    assert await count(sessions) == 21
    # A backfill of a past window is its own cursor and changes nothing already there.
    assert await importer.balance_transactions(since=100, until=200) == 0


async def test_matcher_pricing_model_and_rates(sessions: async_sessionmaker[AsyncSession]) -> None:
    now = datetime.now(UTC)
    model = PricingModel()

    def charge(
        i: int, gross: int, fee: int, *, intl: bool, rate: str | None, src: int
    ) -> dict[str, Any]:
        bt = {
            "id": f"txn_{i}", "created": 1, "available_on": 1, "status": "pending",
            "type": "charge", "reporting_category": "charge", "currency": "usd", "amount": gross,
            "fee": fee, "net": gross - fee, "exchange_rate": rate,
            "source": {"object": "charge", "id": f"ch_{i}", "amount_captured": src,
                       "currency": "eur" if rate else "usd",
                       "payment_method_details": {"card": {"country": "GB" if intl else "US"}}},
        }  # fmt: skip
        return bt_row(bt, "US", now)

    intl_fx = model.expected_fee(5_435, international=True, converted=True)
    assert intl_fx == round(5_435 * 0.054) + 30 == 323  # 2.9 % + 1.5 % + 1 % + 30
    rows = [
        charge(1, 10_000, 320, intl=False, rate=None, src=10_000),  # right
        charge(2, 5_435, intl_fx, intl=True, rate="1.086957", src=5_000),  # right
        charge(3, 5_435, intl_fx - 1, intl=True, rate="1.086957", src=5_000),  # fee off model
        charge(4, 5_440, 324, intl=True, rate="1.086957", src=5_000),  # converted wrongly
    ]
    async with sessions.begin() as session:
        await session.execute(insert(tables.stripe_bts), rows)
    reconciler = Reconciler(sessions, None)
    findings = await reconciler.match()
    got = sorted((f.kind, f.subject, f.evidence.get("against", ""), f.amount) for f in findings)
    assert ("fee_mismatch", "txn_3", "pricing_model", -1) in got
    assert ("fx_mismatch", "txn_4", "stripe_rate", 5) in got
    # Every row is unbooked here, so each is also missing in the ledger (certain, healable).
    assert sorted(f.subject for f in findings if f.kind == "missing_in_ledger") == [
        "txn_1", "txn_2", "txn_3", "txn_4",
    ]  # fmt: skip
    assert all(f.certain and f.fix is not None for f in findings if f.kind == "missing_in_ledger")
    assert len(got) == 6


async def test_continuous_mode_runs_on_its_interval_and_survives_a_failed_run() -> None:
    import asyncio

    from ledger.bootstrap import _continuous

    runs: list[str] = []

    class FlakyReconciler:
        async def run(self, *, mode: str) -> str:
            runs.append(mode)
            if len(runs) == 1:
                raise RuntimeError("Stripe was down")
            return "rr_x"

    task = asyncio.create_task(_continuous(FlakyReconciler(), 0.01))
    try:
        for _ in range(200):  # bounded: at most ~2 s
            if len(runs) >= 3:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert runs[:3] == ["continuous"] * 3
