"""Backtest a candidate model against stored decisions.

    python -m checkout.fraud.backtest --candidate candidate.json [--database-url URL]
        [--schema SCHEMA] [--show 20]

Replays every live pre-authorisation decision with the features and signals recorded at the
time (nothing is recomputed from today's data, so the replay is exact), and prints how many
decisions the candidate would change, by outcome (live -> candidate), and which of the changed
payments were later disputed or refunded as fraud (a refund with reason `fraudulent`, which
includes the early-fraud-warning auto-refunds and rejected reviews).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select

from payplane.db import create_engine, session_factory

from ..adapters.fraud_store import DecisionStore, StoredDecision
from ..adapters.tables import disputes, refunds
from .model import Decision, FraudModel, ModelError, assess

__all__ = ["Change", "Report", "main", "replay", "run"]


@dataclass(frozen=True)
class Change:
    payment_id: str
    live: Decision
    candidate: Decision
    fraud: str  # "" | "disputed" | "refunded_as_fraud"


@dataclass
class Report:
    total: int = 0
    changed: list[Change] = field(default_factory=list)
    live: Counter[Decision] = field(default_factory=Counter)
    candidate: Counter[Decision] = field(default_factory=Counter)

    @property
    def transitions(self) -> Counter[tuple[Decision, Decision]]:
        return Counter((c.live, c.candidate) for c in self.changed)


def replay(
    decisions: Iterable[StoredDecision], candidate: FraudModel, fraud: dict[str, str]
) -> Report:
    """Pure: the candidate's decision for each stored one, from the recorded inputs."""
    report = Report()
    for d in decisions:
        report.total += 1
        new = assess(candidate, d.signals, d.assessment.features()).decision
        report.live[d.assessment.decision] += 1
        report.candidate[new] += 1
        if new is not d.assessment.decision:
            report.changed.append(
                Change(d.payment_id, d.assessment.decision, new, fraud.get(d.payment_id, ""))
            )
    return report


def render(report: Report, candidate: FraudModel, show: int = 20) -> str:
    lines = [
        f"candidate {candidate.version}: {report.total} stored decisions replayed, "
        f"{len(report.changed)} would change",
        "",
        f"{'outcome':<10} {'live':>8} {'candidate':>10}",
    ]
    for d in Decision:
        lines.append(f"{d.value:<10} {report.live[d]:>8} {report.candidate[d]:>10}")
    lines += [
        "",
        "changes (live -> candidate): count, of which later disputed or refunded as fraud",
    ]
    for (a, b), n in sorted(report.transitions.items(), key=lambda kv: (-kv[1], kv[0])):
        bad = sum(1 for c in report.changed if (c.live, c.candidate) == (a, b) and c.fraud)
        lines.append(f"  {a.value:>9} -> {b.value:<9} {n:>6}   fraud: {bad}")
    flagged = [c for c in report.changed if c.fraud]
    lines += ["", f"changed payments later disputed or refunded as fraud: {len(flagged)}"]
    for c in flagged[:show]:
        lines.append(f"  {c.payment_id}  {c.live.value} -> {c.candidate.value}  ({c.fraud})")
    if len(flagged) > show:
        lines.append(f"  ... and {len(flagged) - show} more")
    return "\n".join(lines)


async def run(url: str, schema: str | None, candidate: FraudModel, show: int = 20) -> str:
    engine = create_engine(url, schema=schema)
    sessions = session_factory(engine)
    stored: list[StoredDecision] = []
    fraud: dict[str, str] = {}
    try:
        async with sessions() as session:
            store = DecisionStore(session)
            after = 0
            while True:
                batch = await store.live_pre_auth(after)
                if not batch:
                    break
                after = batch[-1][0]
                stored += [d for _, d in batch]
            for (pid,) in (await session.execute(select(refunds.c.payment_id).where(
                refunds.c.reason == "fraudulent", refunds.c.status != "failed"
            ))).all():  # fmt: skip
                fraud[pid] = "refunded_as_fraud"
            for (pid,) in (await session.execute(select(disputes.c.payment_id))).all():
                if pid:
                    fraud[pid] = "disputed"
    finally:
        await engine.dispose()
    return render(replay(stored, candidate, fraud), candidate, show)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m checkout.fraud.backtest", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--candidate", required=True, help="a model file (JSON) to evaluate")
    ap.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    ap.add_argument("--schema", default=os.environ.get("DATABASE_SCHEMA") or None)
    ap.add_argument("--show", type=int, default=20, help="changed fraud payments to list")
    args = ap.parse_args(argv)
    if not args.database_url:
        print("backtest: --database-url or DATABASE_URL is required", file=sys.stderr)
        return 2
    try:
        candidate = FraudModel.load(args.candidate)
    except ModelError as exc:
        print(f"backtest: {exc}", file=sys.stderr)
        return 2
    print(asyncio.run(run(args.database_url, args.schema, candidate, args.show)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
