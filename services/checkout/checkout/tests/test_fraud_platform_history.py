"""Training from checkout's own history (SQLite, migrated by alembic): its payments, and
fraud labels from its disputes, warnings, reviews and refunds, each known when recorded."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from checkout.adapters.tables import disputes, early_fraud_warnings, payments, refunds, reviews
from checkout.bootstrap import MIGRATIONS
from checkout.fraud import train
from checkout.fraud.handbook import parse_time
from checkout.fraud.learned import LearnedModel
from checkout.fraud.platform_history import load_transactions
from checkout.fraud.simulate import simulate
from payplane.db import create_engine, run_migrations, session_factory

DAY = 86_400


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _payment(pid: str, at: float, customer: int, terminal: int, amount: int) -> dict[str, Any]:
    return {
        "id": pid, "caller": "test", "customer_ref": f"cust{customer}", "amount": amount,
        "currency": "usd", "amount_refunded": 0, "payment_method": "pm_card_visa",
        "capture_method": "automatic", "description": "", "status": "succeeded",
        "metadata": {"seller": f"t{terminal}"}, "version": 1, "created_at": _at(at),
        "updated_at": _at(at), "amount_captured": amount, "card_fingerprint": f"fp{customer}",
        "card_country": "US", "ip_country": "US", "email": f"c{customer}@example.com",
        "confirm_later": False,
    }  # fmt: skip


async def _fill(url: str, rows: list[tuple[int, str, int, int, int, int, int]]) -> None:
    await run_migrations(url, MIGRATIONS)
    engine = create_engine(url)
    pays, cases = [], []
    for tid, stamp, c, t, amount, fraud, _ in rows:
        at = parse_time(stamp)
        pays.append(_payment(f"pay_{tid}", at, c, t, amount))
        if fraud:  # the cardholder disputes it three days later
            cases.append((f"pay_{tid}", at + 3 * DAY, amount))
    try:
        async with session_factory(engine).begin() as s:
            await s.execute(insert(payments), pays)
            await s.execute(insert(disputes), [
                {"id": f"dp_{i}", "payment_id": pid, "stripe_charge_id": f"ch_{i}",
                 "amount": amount, "currency": "usd", "reason": "fraudulent", "status": "lost",
                 "funds_withdrawn": True, "funds_reinstated": False, "opened_at": _at(at),
                 "updated_at": _at(at)}
                for i, (pid, at, amount) in enumerate(cases)
            ])  # fmt: skip
            first = parse_time(rows[0][1])
            # the first genuine payments: a warning (fraud, a day later), a rejected review,
            # a refund enforcing Radar's block and an automatic rejection (neither a label)
            genuine = [f"pay_{r[0]}" for r in rows if not r[5]][:4]
            await s.execute(insert(early_fraud_warnings).values(
                id="issfr_1", payment_id=genuine[0], stripe_charge_id="ch_x",
                fraud_type="made_with_stolen_card", actionable=True, action="refunded",
                created_at=_at(first + DAY)))  # fmt: skip
            await s.execute(insert(reviews), [
                {"id": "rev_1", "payment_id": genuine[1], "reason": "rule", "status": "rejected",
                 "opened_at": _at(first), "closed_at": _at(first + 2 * DAY),
                 "auto_resolved": False},
                {"id": "rev_2", "payment_id": genuine[3], "reason": "rule", "status": "rejected",
                 "opened_at": _at(first), "closed_at": _at(first + 2 * DAY),
                 "auto_resolved": True},
            ])  # fmt: skip
            await s.execute(insert(refunds).values(
                id="ref_radar_1", payment_id=genuine[2], amount=100, currency="usd",
                reason="fraudulent", status="succeeded", stripe_refund_id="re_s1",
                created_at=_at(first + DAY)))  # fmt: skip
    finally:
        await engine.dispose()


async def _load(url: str) -> Any:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s:
            return await load_transactions(s)
    finally:
        await engine.dispose()


def test_train_from_checkouts_own_history(tmp_path: Path) -> None:
    rows = simulate(days=40, customers=100, terminals=80, seed=6)
    url = f"sqlite:///{tmp_path / 'checkout.db'}"
    asyncio.run(_fill(url, rows))
    txns, labels = asyncio.run(_load(url))
    assert len(txns) == len(rows)
    assert [t.facts.at for t in txns] == sorted(t.facts.at for t in txns)
    frauds = {f"pay_{r[0]}" for r in rows if r[5]}
    genuine = [f"pay_{r[0]}" for r in rows if not r[5]][:4]
    assert set(labels) == frauds | {genuine[0], genuine[1]}
    assert labels[genuine[0]].source == "early_fraud_warning:made_with_stolen_card"
    assert labels[genuine[1]].source == "review:rejected"
    some = next(t for t in txns if t.facts.payment_id in frauds)
    assert some.known_at == some.facts.at + 3 * DAY  # known when the dispute opened
    assert some.facts.seller.startswith("t") and some.facts.card.startswith("fp")
    out = tmp_path / "model"
    code = train.main([
        "--database-url", url, "--train-from", "2018-04-15", "--train-to", "2018-04-30",
        "--out", str(out),
    ])  # fmt: skip
    assert code == 0
    model = LearnedModel.load(out)
    assert model.manifest["training"]["fit_frauds"] > 0
