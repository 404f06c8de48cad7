"""The backtest replays stored decisions (SQLite, migrated by alembic) against a candidate."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert

from checkout.adapters.fraud_store import DecisionStore
from checkout.adapters.tables import disputes
from checkout.bootstrap import MIGRATIONS
from checkout.fraud import backtest
from checkout.fraud.features import History, Signals, compute_features
from checkout.fraud.model import DEFAULT_MODEL_PATH, FraudModel, assess
from payplane.db import create_engine, run_migrations, session_factory

NOW = 1_750_000_000.0


async def test_backtest_counts_changes_and_names_the_fraud_among_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bt.db'}"
    await run_migrations(url, MIGRATIONS)
    engine = create_engine(url)
    live = FraudModel.load(DEFAULT_MODEL_PATH)
    try:
        async with session_factory(engine).begin() as session:
            store = DecisionStore(session)
            for i in range(6):
                s = Signals(amount=1_000 * (i + 1), currency="usd", customer_ref=f"c{i}",
                            email=f"u{i}@example.com")  # fmt: skip
                a = assess(live, s, compute_features(s, History(), NOW))
                await store.add(f"pay_{i}", "live", "pre_auth", a, s, NOW)
            at = datetime.fromtimestamp(NOW, UTC)
            await session.execute(insert(disputes).values(
                id="dp_1", payment_id="pay_1", stripe_charge_id="ch_1", amount=2_000,
                currency="usd", reason="fraudulent", status="lost", funds_withdrawn=True,
                funds_reinstated=False, opened_at=at, updated_at=at,
            ))  # fmt: skip
    finally:
        await engine.dispose()
    data = json.loads(DEFAULT_MODEL_PATH.read_text())
    data["version"] = "candidate-2"
    data["lists"] = {"block": {"email": ["u1@example.com", "u2@example.com"]}}
    path = tmp_path / "candidate.json"
    path.write_text(json.dumps(data))
    out = await backtest.run(url, None, FraudModel.load(path))
    assert "6 stored decisions replayed, 2 would change" in out
    assert "allow -> block          2   fraud: 1" in out
    assert "pay_1  allow -> block  (disputed)" in out
    assert "pay_2" not in out.split("refunded as fraud:")[-1]
