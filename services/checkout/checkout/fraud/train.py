"""Train the learned model and write its artefact.

    python -m checkout.fraud.train --transactions FILE --train-from 2018-07-25 \
        --train-to 2018-07-31 [--delay-days 7] [--calibration-days 2] --out DIR
    python -m checkout.fraud.train --database-url URL [--schema S] --train-from ... --out DIR

The source is a file in the handbook's format (a fraud's label known `--delay-days` after
it) or checkout's own database (platform_history.py: its payments, and labels from its
disputes, early fraud warnings, reviews and refunds, each known when it was recorded).
Replays the source through the engine's feature pipeline (features see only the past, labels
only once known), labels the training window as known at `--as-of` (default: the end of the
window plus the label delay; a payment without a fraud label counts as genuine once older
than the maturity window, which is the delay), and fits LightGBM with a time-based split:
the trees learn on the window's first days, the last `--calibration-days` stop the boosting
early and fit the Platt calibration, so both are judged on payments later than the ones
learned from. The artefact (learned.py) carries the version, the features, the calibration,
the thresholds, the training window and the calibration slice's metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import lightgbm as lgb
import numpy as np
from numpy.typing import NDArray
from sqlalchemy.exc import SQLAlchemyError

from payplane.db import create_engine, session_factory

from .calibration import fit_platt, reliability_table
from .dataset import Rows, Window, collect
from .entity_state import StateConfig
from .handbook import Transaction, parse_day
from .learned import Thresholds, write_artefact
from .metrics import auc_roc, average_precision
from .pipeline import FEATURE_SET, FEATURES, FeaturePipeline
from .platform_history import load_transactions

__all__ = ["DEFAULT_PARAMS", "Fitted", "fit", "main", "train_from_source"]

DAY = 86_400
DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "max_depth": 6,
    "min_data_in_leaf": 10,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "seed": 7,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 1,
    "verbose": -1,
    "metric": "average_precision",
}
DEFAULT_THRESHOLDS = Thresholds(challenge=0.1, review=0.3, block=0.9)


@dataclass(frozen=True)
class Fitted:
    model_text: str
    manifest: dict[str, Any]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def fit(
    rows: Rows,
    labels: NDArray[np.int8],
    calibration_from: float,
    *,
    state_config: StateConfig,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    params: dict[str, Any] | None = None,
    rounds: int = 300,
    early_stopping: int = 100,
    window: tuple[float, float, float] | None = None,
    refit: bool = False,
    scale_rounds: bool = False,
) -> Fitted:
    """Fit on the labelled rows before `calibration_from`, stop early and calibrate on the
    labelled rows from it. `labels`: 1 fraud, 0 genuine, -1 not labelled (left out).
    `window`: (start, end, as_of) for the manifest."""
    p = dict(DEFAULT_PARAMS, **(params or {}))
    labelled = labels >= 0
    early = labelled & (rows.at < calibration_from)
    late = labelled & (rows.at >= calibration_from)
    X_fit, y_fit = rows.X[early], labels[early]
    X_cal, y_cal = rows.X[late], labels[late]
    for name, y in (("training", y_fit), ("calibration", y_cal)):
        if len(y) == 0 or y.min() == y.max():
            raise ValueError(f"the {name} slice needs both frauds and genuine payments")
    names = list(FEATURES)
    d_fit = lgb.Dataset(X_fit, y_fit, feature_name=names, free_raw_data=False)
    d_cal = lgb.Dataset(X_cal, y_cal, feature_name=names, reference=d_fit)
    booster = lgb.train(
        p,
        d_fit,
        num_boost_round=rounds,
        valid_sets=[d_cal],
        callbacks=[lgb.early_stopping(early_stopping, verbose=False)],
    )
    best = booster.best_iteration or rounds
    raw_cal = np.asarray(booster.predict(X_cal, raw_score=True, num_iteration=best, num_threads=1))
    platt = fit_platt(raw_cal, y_cal)
    p_cal = 1.0 / (1.0 + np.exp(-np.clip(platt.logit(raw_cal), -50, 50)))
    if refit:
        # the trees again on the whole window: as many as early stopping chose, or (scaled)
        # as many per labelled payment
        if scale_rounds:
            best = max(1, round(best * int(labelled.sum()) / len(y_fit)))
        d_all = lgb.Dataset(rows.X[labelled], labels[labelled], feature_name=names)
        booster = lgb.train(p, d_all, num_boost_round=best)
    model_text = booster.model_to_string(num_iteration=best)
    digest = hashlib.sha256(model_text.encode()).hexdigest()
    start, end, as_of = window or (float(rows.at.min()), float(rows.at.max()), float("nan"))
    manifest: dict[str, Any] = {
        "version": f"gbdt-{_iso(end - 1)[:10]}-{digest[:10]}",
        "feature_set": FEATURE_SET,
        "features": names,
        "state_config": {
            "delay_days": state_config.delay_days,
            "maturity_days": state_config.maturity_days,
            "history_days": state_config.history_days,
        },
        "calibration": {
            **platt.to_json(),
            "slice": {"from": _iso(calibration_from), "to": _iso(end - 1)},
            "table": reliability_table(p_cal, y_cal),
        },
        "thresholds": {
            "challenge": thresholds.challenge,
            "review": thresholds.review,
            "block": thresholds.block,
        },
        "training": {
            "from": _iso(start),
            "to": _iso(end - 1),
            "labels_as_of": _iso(as_of) if as_of == as_of else None,
            "fit_rows": len(y_fit),
            "fit_frauds": int(y_fit.sum()),
            "calibration_rows": len(y_cal),
            "calibration_frauds": int(y_cal.sum()),
            "unlabelled_rows": int((~labelled).sum()),
            "iterations": int(best),
            "params": p,
        },
        "metrics": {
            "calibration_slice": {
                "auc_roc": round(auc_roc(y_cal, raw_cal), 6),
                "average_precision": round(average_precision(y_cal, raw_cal), 6),
            }
        },
    }
    return Fitted(model_text, manifest)


def train_from_source(
    source: str | Iterable[Transaction],
    train_from: float,
    train_to: float,
    *,
    delay_days: int = 7,
    calibration_days: int = 2,
    as_of: float | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    params: dict[str, Any] | None = None,
) -> Fitted:
    """train_to is exclusive (unix seconds)."""
    cfg = StateConfig(delay_days=delay_days, maturity_days=delay_days)
    got = collect(
        source, FeaturePipeline(config=cfg), delay_days, [Window("train", train_from, train_to)]
    )
    rows = got.windows["train"]
    when = as_of if as_of is not None else train_to + delay_days * DAY
    labels = rows.labels_as_of(when, cfg.maturity_days)
    return fit(
        rows,
        labels,
        train_to - calibration_days * DAY,
        state_config=cfg,
        thresholds=thresholds,
        params=params,
        window=(train_from, train_to, when),
    )


async def _from_database(url: str, schema: str | None) -> list[Transaction]:
    engine = create_engine(url, schema=schema)
    try:
        async with session_factory(engine)() as session:
            txns, _ = await load_transactions(session)
    finally:
        await engine.dispose()
    return txns


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m checkout.fraud.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--transactions", help="a CSV in the handbook's format")
    src.add_argument("--database-url", help="checkout's database (its own history)")
    ap.add_argument("--schema", help="the database schema (PostgreSQL)")
    ap.add_argument("--train-from", required=True, help="first day (YYYY-MM-DD)")
    ap.add_argument("--train-to", required=True, help="last day, inclusive (YYYY-MM-DD)")
    ap.add_argument("--delay-days", type=int, default=7)
    ap.add_argument("--calibration-days", type=int, default=2)
    ap.add_argument("--as-of", help="labels as known on this day (default: end + delay)")
    ap.add_argument("--thresholds", default="0.1,0.3,0.9", help="challenge,review,block")
    ap.add_argument("--out", required=True, help="the artefact's directory")
    args = ap.parse_args(argv)
    try:
        c, r, b = (float(x) for x in args.thresholds.split(","))
        source: str | list[Transaction] = args.transactions
        if args.database_url:
            source = asyncio.run(_from_database(args.database_url, args.schema))
        fitted = train_from_source(
            source,
            parse_day(args.train_from),
            parse_day(args.train_to) + DAY,
            delay_days=args.delay_days,
            calibration_days=args.calibration_days,
            as_of=parse_day(args.as_of) if args.as_of else None,
            thresholds=Thresholds(c, r, b),
        )
    except (OSError, ValueError, SQLAlchemyError) as exc:
        print(f"train: {exc}", file=sys.stderr)
        return 2
    version = write_artefact(args.out, fitted.model_text, fitted.manifest)
    m = fitted.manifest
    print(f"wrote {args.out}: {version}")
    print(
        f"  trained on {m['training']['fit_rows']} payments ({m['training']['fit_frauds']} "
        f"fraud), {m['training']['iterations']} trees; calibration slice "
        f"{m['training']['calibration_rows']} ({m['training']['calibration_frauds']} fraud): "
        f"AUC {m['metrics']['calibration_slice']['auc_roc']:.3f} "
        f"AP {m['metrics']['calibration_slice']['average_precision']:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
