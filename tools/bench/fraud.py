"""`python -m bench.fraud [--payments 100000] [--customers 10000] [--samples 2000]
[--postgres URL]`: fraud decision latency (p50, p99) on a realistic history.

Fills checkout's own tables (migrated by alembic) with past payments spread over 60 days,
declines and Radar outcomes, then times what CreatePayment does before it asks Stripe:
one transaction that loads the history aggregates (one statement) and scores the live model.
On SQLite always; on PostgreSQL when --postgres or TEST_POSTGRES_URL names a server (a
throw-away schema is created and dropped). Target: p99 under 5 ms. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from checkout.adapters.tables import declines, payments
from checkout.bootstrap import MIGRATIONS
from checkout.fraud.features import Signals
from checkout.fraud.model import DEFAULT_MODEL_PATH, FraudModel
from checkout.service.fraud import FraudScreen
from payplane.db import create_engine, run_migrations, session_factory
from payplane.db.testing import postgres_schema

__all__ = ["main"]

DAY = 86_400
COUNTRIES = ["US", "US", "US", "GB", "DE", "FR", "CA", "NG", "BR"]
NEVER = ("lost_card", "stolen_card", "fraudulent")
OTHER = ("insufficient_funds", "generic_decline", "expired_card", "incorrect_cvc")


def _rows(n: int, customers: int, now: float, rng: random.Random) -> tuple[list[Any], list[Any]]:
    pays: list[dict[str, Any]] = []
    decs: list[dict[str, Any]] = []
    for i in range(n):
        c = rng.randrange(customers)
        card = (
            f"fp{c:06d}{rng.randrange(2)}"
            if rng.random() > 0.02
            else f"fpshared{rng.randrange(50)}"
        )
        created = datetime.fromtimestamp(now - rng.random() * 60 * DAY, UTC)
        failed = rng.random() < 0.06
        risk = rng.randrange(5, 60) if rng.random() > 0.03 else rng.randrange(65, 95)
        pid = f"pay_b{i:010d}"
        pays.append(
            {
                "id": pid,
                "caller": "bench",
                "customer_ref": f"cust{c}",
                "amount": rng.randrange(500, 30_000),
                "currency": "usd",
                "amount_refunded": 0,
                "payment_method": "pm_card_visa",
                "capture_method": "automatic",
                "description": "",
                "metadata": {},
                "status": "failed" if failed else "succeeded",
                "stripe_payment_intent_id": f"pi_b{i:010d}",
                "stripe_charge_id": f"ch_b{i:010d}",
                "version": 1,
                "created_at": created,
                "updated_at": created,
                "amount_captured": 0,
                "card_fingerprint": card,
                "card_country": rng.choice(COUNTRIES),
                "ip_address": f"10.{c % 250}.{rng.randrange(250)}.1",
                "ip_country": rng.choice(COUNTRIES),
                "email": f"cust{c}@example.com",
                "shipping_country": rng.choice(COUNTRIES),
                "fraud_decision": "allow",
                "radar_risk_score": risk,
                "radar_risk_level": "normal" if risk < 65 else "elevated",
                "confirm_later": False,
            }
        )
        if failed:
            code = rng.choice(NEVER) if rng.random() < 0.2 else rng.choice(OTHER)
            decs.append(
                {
                    "payment_id": pid,
                    "customer_ref": f"cust{c}",
                    "card_fingerprint": card,
                    "code": "card_declined",
                    "decline_code": code,
                    "advice": "never" if code in NEVER else "customer_action",
                    "occurred_at": created,
                }
            )
    return pays, decs


async def _bench(url: str, schema: str | None, args: argparse.Namespace) -> list[float]:
    await run_migrations(url, MIGRATIONS, schema=schema)
    engine = create_engine(url, schema=schema)
    sessions = session_factory(engine)
    rng = random.Random(7)
    now = time.time()
    pays, decs = _rows(args.payments, args.customers, now, rng)
    t0 = time.perf_counter()
    for start in range(0, len(pays), 5_000):
        async with sessions.begin() as s:
            await s.execute(insert(payments), pays[start : start + 5_000])
    for start in range(0, len(decs), 5_000):
        async with sessions.begin() as s:
            await s.execute(insert(declines), decs[start : start + 5_000])
    took = time.perf_counter() - t0
    print(f"  filled {len(pays):,} payments, {len(decs):,} declines in {took:.1f} s")
    screen = FraudScreen(FraudModel.load(DEFAULT_MODEL_PATH), FraudModel.load(DEFAULT_MODEL_PATH))
    timings: list[float] = []
    try:
        for i in range(args.warmup + args.samples):
            c = rng.randrange(args.customers)
            signals = Signals(
                amount=rng.randrange(500, 40_000),
                currency="usd",
                customer_ref=f"cust{c}",
                card_fingerprint=f"fp{c:06d}0",
                card_country="US",
                ip_address=f"10.{c % 250}.1.1",
                ip_country="US",
                email=f"cust{c}@example.com",
                shipping_country="US",
                customer_created_at=now - 200 * DAY,
            )
            t = time.perf_counter()
            async with sessions.begin() as session:
                await screen.decide(session, signals, time.time())
            if i >= args.warmup:
                timings.append((time.perf_counter() - t) * 1000)
    finally:
        await engine.dispose()
    return timings


def _report(name: str, ms: list[float]) -> str:
    q = statistics.quantiles(ms, n=100)
    verdict = "met" if q[98] < 5 else "MISSED"
    return (
        f"  {name}: n={len(ms)} p50={statistics.median(ms):.2f} ms p99={q[98]:.2f} ms "
        f"max={max(ms):.2f} ms  target p99 < 5 ms: {verdict}"
    )


async def _main(args: argparse.Namespace) -> None:
    print(f"fraud decision latency: {args.payments:,} past payments, {args.customers:,} customers")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench-checkout.db'}"
        print(_report("sqlite", await _bench(url, None, args)))
    pg = args.postgres or os.environ.get("TEST_POSTGRES_URL")
    if pg:
        async with postgres_schema(pg) as schema:
            print(_report("postgresql", await _bench(pg, schema, args)))
    else:
        print("  postgresql: skipped (give --postgres URL or set TEST_POSTGRES_URL)")


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.fraud", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--payments", type=int, default=100_000)
    ap.add_argument("--customers", type=int, default=10_000)
    ap.add_argument("--samples", type=int, default=2_000)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--postgres", default="", help="a PostgreSQL URL (default TEST_POSTGRES_URL)")
    asyncio.run(_main(ap.parse_args(argv)))


if __name__ == "__main__":
    main()
