"""`python -m bench.ledger`: the ledger's posting throughput and reconciliation time.

    python -m bench.ledger [--entries 20000] [--unbatched 2000] [--batch 1000]
                           [--reconcile 100000,1000000] [--postgres URL] [--no-sqlite]

Posting: card-payment entries (three postings each, linked to a balance transaction, hash
chained), appended one per transaction ("unbatched") and `--batch` per transaction
("batched"), on SQLite (a file in a temporary directory) and on PostgreSQL (TEST_POSTGRES_URL
or --postgres; a throwaway schema). Reconciliation: N imported balance transactions and
their N bookings are generated directly in the tables (plus a few planted differences), then
the matcher runs (every check of a run, no Stripe calls) and must find exactly the planted
ones. Figures only: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledger.adapters.journal import Journal
from ledger.adapters.tables import entries as entries_table
from ledger.adapters.tables import stripe_bts
from ledger.bootstrap import MIGRATIONS
from ledger.domain.pricing import PricingModel
from ledger.domain.rules import Settlement, payment_succeeded
from ledger.service.reconcile import Reconciler
from payplane.db import create_engine, run_migrations, session_factory
from payplane.db.testing import postgres_schema

__all__ = ["main"]

PLANTED = 10  # differences planted among the generated transactions (of each of 3 kinds)


@asynccontextmanager
async def _database(
    kind: str, pg_url: str | None
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'ledger-bench.db'}"
            await run_migrations(url, MIGRATIONS)
            engine = create_engine(url)
            try:
                yield session_factory(engine)
            finally:
                await engine.dispose()
        return
    assert pg_url is not None
    async with postgres_schema(pg_url) as schema:
        await run_migrations(pg_url, MIGRATIONS, schema=schema)
        engine = create_engine(pg_url, schema=schema)
        try:
            yield session_factory(engine)
        finally:
            await engine.dispose()


def _entry(i: int, tag: str) -> object:
    gross = 1_000 + i % 9_000
    fee = PricingModel().expected_fee(gross, international=False, converted=False)
    s = Settlement(f"txn_{tag}{i:012d}", "usd", gross, fee, gross - fee)
    return payment_succeeded(f"evt_{tag}{i}", f"pay_{tag}{i}", s, {"charge": f"ch_{tag}{i}"})


async def bench_posting(
    sessions: async_sessionmaker[AsyncSession], batched: int, unbatched: int, batch: int
) -> tuple[float, float]:
    made = [_entry(i, "u") for i in range(unbatched)]
    t0 = time.perf_counter()
    for e in made:
        async with sessions.begin() as session:
            await Journal(session).append(e)  # type: ignore[arg-type]
    single = unbatched / (time.perf_counter() - t0)
    made = [_entry(i, "b") for i in range(batched)]
    t0 = time.perf_counter()
    for i in range(0, batched, batch):
        async with sessions.begin() as session:
            await Journal(session).append_many(made[i : i + batch])  # type: ignore[arg-type]
    many = batched / (time.perf_counter() - t0)
    return single, many


async def generate(sessions: async_sessionmaker[AsyncSession], n: int) -> None:
    """n balance transactions as imported, n bookings of them; PLANTED of each of: unbooked,
    fee booked wrong, Stripe's fee off the pricing model."""
    now = datetime.now(UTC)
    model = PricingModel()
    chunk = 20_000
    for start in range(0, n, chunk):
        bts, rows = [], []
        for i in range(start, min(n, start + chunk)):
            gross = 1_000 + i % 9_000
            fee = model.expected_fee(gross, international=bool(i % 3 == 0), converted=False)
            stripe_fee = fee + 7 if i < PLANTED * 3 and i % 3 == 2 else fee  # off the model
            bt_id = f"txn_{i:016d}"
            bts.append(
                {
                    "id": bt_id, "created": 1_700_000_000 + i // 10, "available_on": 0,
                    "status": "pending", "type": "charge", "reporting_category": "charge",
                    "source": f"ch_{i}", "currency": "usd", "amount": gross, "fee": stripe_fee,
                    "net": gross - stripe_fee, "exchange_rate": None, "source_amount": gross,
                    "source_currency": "usd", "international": i % 3 == 0,
                    "fx_expected_amount": None, "payout_id": None, "raw": None,
                    "imported_at": now,
                }
            )  # fmt: skip
            if i < PLANTED * 3 and i % 3 == 0:
                continue  # never booked
            booked_fee = stripe_fee + 5 if i < PLANTED * 3 and i % 3 == 1 else stripe_fee
            rows.append(
                {
                    "seq": i + 1, "id": f"je_{i:024d}", "source_event_id": f"evt_{i}",
                    "source_type": "checkout.payment.succeeded", "source_id": f"pay_{i}",
                    "description": "generated", "refs": {}, "created_at": now,
                    "prev_hash": None, "hash": None, "bt_id": bt_id, "link_role": "booking",
                    "bt_gross": gross, "bt_fee": booked_fee, "bt_settled": 0,
                }
            )  # fmt: skip
        async with sessions.begin() as session:
            await session.execute(insert(stripe_bts), bts)
            await session.execute(insert(entries_table), rows)


async def bench_reconcile(
    sessions: async_sessionmaker[AsyncSession], n: int
) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    await generate(sessions, n)
    setup = time.perf_counter() - t0
    reconciler = Reconciler(sessions, None)
    reconciler.last_import_started = datetime.now(UTC)
    t0 = time.perf_counter()
    findings = await reconciler.match()
    await reconciler.count_transactions(None, None)
    elapsed = time.perf_counter() - t0
    kinds = sorted((f.kind, f.evidence.get("against", "")) for f in findings)
    expected = sorted(
        [("missing_in_ledger", "")] * PLANTED
        + [("fee_mismatch", "ledger")] * PLANTED
        + [("fee_mismatch", "pricing_model")] * PLANTED
    )
    if kinds != expected:
        raise SystemExit(
            f"matcher found {len(findings)} differences, not the {3 * PLANTED} planted"
        )
    return setup, elapsed, len(findings)


async def run(args: argparse.Namespace) -> None:
    pg_url = args.postgres or os.environ.get("TEST_POSTGRES_URL") or None
    kinds = ([] if args.no_sqlite else ["sqlite"]) + (["postgresql"] if pg_url else [])
    print(f"ledger bench on {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}")
    print("\nposting (entries of 3 postings, hash-chained)")
    print(f"{'database':<12}{'unbatched entries/s':>22}{f'batched ({args.batch}) entries/s':>30}")
    for kind in kinds:
        async with _database(kind, pg_url) as sessions:
            single, many = await bench_posting(sessions, args.entries, args.unbatched, args.batch)
        print(f"{kind:<12}{single:>22,.0f}{many:>30,.0f}   ({many * 3:,.0f} postings/s batched)")
    print("\nreconciliation (matcher over imported balance transactions and their bookings)")
    print(f"{'database':<12}{'transactions':>14}{'setup s':>10}{'reconcile s':>14}{'found':>8}")
    for kind in kinds:
        for n in args.reconcile:
            async with _database(kind, pg_url) as sessions:
                setup, elapsed, found = await bench_reconcile(sessions, n)
            print(f"{kind:<12}{n:>14,}{setup:>10.1f}{elapsed:>14.1f}{found:>8}")


def _sizes(value: str) -> list[int]:
    return [int(v.replace("_", "")) for v in value.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger", description=__doc__)
    parser.add_argument("--entries", type=int, default=20_000, help="entries posted batched")
    parser.add_argument("--unbatched", type=int, default=2_000, help="entries posted one by one")
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--reconcile", type=_sizes, default=[100_000, 1_000_000])
    parser.add_argument(
        "--postgres", default=None, help="PostgreSQL URL (default TEST_POSTGRES_URL)"
    )
    parser.add_argument("--no-sqlite", action="store_true")
    asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
