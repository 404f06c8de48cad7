"""Feature rows for time windows of a transactions file, from one replay through the engine's
pipeline (replay.py): what training and the evaluation read."""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from .handbook import Transaction, read_transactions
from .labels import Label, training_label
from .pipeline import FEATURES, FeaturePipeline
from .replay import replay

__all__ = ["Rows", "Window", "collect"]

DAY = 86_400
Hook = Callable[[str, Transaction, list[float]], None]


@dataclass(frozen=True)
class Window:
    name: str
    start: float  # unix seconds, inclusive
    end: float  # exclusive


@dataclass
class Rows:
    """Feature rows of one window, with what is known about each row."""

    X: NDArray[np.float64]
    at: NDArray[np.float64]
    fraud: NDArray[np.int8]  # the file's ground truth
    known_at: NDArray[np.float64]  # when each fraud label became known (NaN: none)
    scenario: NDArray[np.int8]  # analysis only
    cards: list[str]
    ids: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    def labels_as_of(self, as_of: float, maturity_days: float) -> NDArray[np.int8]:
        """Training labels as known at `as_of` (-1: not labelled yet)."""
        out = np.empty(len(self), dtype=np.int8)
        for i, (at, known) in enumerate(zip(self.at.tolist(), self.known_at.tolist(), strict=True)):
            label = Label(self.ids[i], known, "history") if known == known else None
            y = training_label(at, label, as_of, maturity_days)
            out[i] = -1 if y is None else y
        return out


@dataclass
class _Builder:
    values: array[float] = field(default_factory=lambda: array("d"))  # 8 bytes a value
    at: list[float] = field(default_factory=list)
    fraud: list[int] = field(default_factory=list)
    known_at: list[float] = field(default_factory=list)
    scenario: list[int] = field(default_factory=list)
    cards: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)

    def add(self, txn: Transaction, vec: list[float], delay_days: float) -> None:
        known = txn.label_time(delay_days)
        self.values.extend(vec)
        self.at.append(txn.facts.at)
        self.fraud.append(txn.fraud)
        self.known_at.append(float("nan") if known is None else known)
        self.scenario.append(txn.scenario)
        self.cards.append(txn.facts.card)
        self.ids.append(txn.facts.payment_id)

    def rows(self) -> Rows:
        X = np.frombuffer(self.values, dtype=np.float64).reshape(-1, len(FEATURES))
        return Rows(
            X=X,
            at=np.asarray(self.at, dtype=np.float64),
            fraud=np.asarray(self.fraud, dtype=np.int8),
            known_at=np.asarray(self.known_at, dtype=np.float64),
            scenario=np.asarray(self.scenario, dtype=np.int8),
            cards=self.cards,
            ids=self.ids,
        )


@dataclass
class Collected:
    windows: dict[str, Rows]
    replayed: int
    feature_cpu_s: float  # CPU seconds spent in pipeline.features for the collected rows
    fraud_cards_by_day: dict[int, set[str]]


def collect(
    transactions: Iterable[Transaction] | str | Path,
    pipeline: FeaturePipeline,
    delay_days: float,
    windows: Iterable[Window],
    hook: Hook | None = None,
) -> Collected:
    """Replay `transactions` (a file, or rows in time order) and keep the feature rows of
    each window; `hook(window, txn, vector)` runs for each kept row before it is recorded."""
    wins = list(windows)
    if isinstance(transactions, str | Path):
        start = min(w.start for w in wins)
        end = max(w.end for w in wins)
        # the 30-day windows, lagged by the delay, need that much history before the start
        since = start - (pipeline.config.retention_days + 1) * DAY
        transactions = read_transactions(transactions, since=since, until=end)
    builders = {w.name: _Builder() for w in wins}
    fraud_days: dict[int, set[str]] = {}
    replayed = 0
    cpu = 0
    for txn in replay(transactions, pipeline, delay_days):
        replayed += 1
        at = txn.facts.at
        if txn.fraud:
            fraud_days.setdefault(int(at // DAY), set()).add(txn.facts.card)
        inside = [w.name for w in wins if w.start <= at < w.end]
        if not inside:
            continue
        t0 = time.process_time_ns()
        vec = pipeline.features(txn.facts)
        cpu += time.process_time_ns() - t0
        for name in inside:
            builders[name].add(txn, vec, delay_days)
            if hook is not None:
                hook(name, txn, vec)
    return Collected(
        windows={name: b.rows() for name, b in builders.items()},
        replayed=replayed,
        feature_cpu_s=cpu / 1e9,
        fraud_cards_by_day=fraud_days,
    )
