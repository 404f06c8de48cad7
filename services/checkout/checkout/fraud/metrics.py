"""The handbook's metrics and test-set protocol. Pure (numpy).

auc_roc            area under the ROC curve (ties share their rank)
average_precision  sum over distinct thresholds of (recall step) x precision (scikit-learn's
                   definition, which the handbook uses)
card_precision_at_k
                   per test day: each card's highest score and whether any of its
                   transactions that day was fraud; the share of frauded cards among the k
                   highest; averaged over days. Cards already caught in an earlier day's
                   top k are left out of later days (the handbook's card_precision_top_k).
protocol_mask      the handbook's get_train_test_set: before test day t, the cards with a
                   fraud from the training start up to t - delay - 1 are known compromised
                   and left out of day t's test set.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "auc_roc",
    "average_precision",
    "card_precision_at_k",
    "protocol_mask",
]


def auc_roc(y: NDArray[np.int8], score: NDArray[np.float64]) -> float:
    y = np.asarray(y, dtype=np.int64)
    pos = int(y.sum())
    neg = len(y) - pos
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    s = np.asarray(score)[order]
    ranks = np.empty(len(s), dtype=np.float64)
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[i : j + 1] = (i + j) / 2 + 1
        i = j + 1
    r = np.empty(len(s), dtype=np.float64)
    r[order] = ranks
    return float((r[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def average_precision(y: NDArray[np.int8], score: NDArray[np.float64]) -> float:
    y = np.asarray(y, dtype=np.int64)
    pos = int(y.sum())
    if pos == 0:
        return float("nan")
    order = np.argsort(-np.asarray(score), kind="mergesort")
    s = np.asarray(score)[order]
    yy = y[order]
    tp = np.cumsum(yy)
    seen = np.arange(1, len(yy) + 1)
    last = np.r_[s[1:] != s[:-1], True]  # the last index of each distinct score
    tp, seen = tp[last], seen[last]
    precision = tp / seen
    recall = tp / pos
    steps = np.diff(np.r_[0.0, recall])
    return float((steps * precision).sum())


def card_precision_at_k(
    days: NDArray[np.int64],
    cards: Sequence[str],
    y: NDArray[np.int8],
    score: NDArray[np.float64],
    k: int = 100,
) -> float:
    caught: set[str] = set()
    per_day: list[float] = []
    for day in sorted(set(days.tolist())):
        best: dict[str, tuple[float, int]] = {}
        for i in np.flatnonzero(days == day).tolist():
            card = cards[i]
            if card in caught:
                continue
            s, f = best.get(card, (-np.inf, 0))
            best[card] = (max(s, float(score[i])), max(f, int(y[i])))
        # highest score first; among equals, the card id decides (deterministic)
        top = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))[:k]
        hits = [card for card, (_, f) in top if f]
        per_day.append(len(hits) / k)
        caught.update(hits)
    return float(np.mean(per_day)) if per_day else float("nan")


def protocol_mask(
    days: NDArray[np.int64],
    cards: Sequence[str],
    fraud_cards_by_day: dict[int, set[str]],
    train_first_day: int,
    delay_days: int,
) -> NDArray[np.bool_]:
    """Which test rows stay: a card known compromised before its row's day is left out.
    `fraud_cards_by_day`: day -> cards with a fraud that day (from the whole replay)."""
    keep = np.ones(len(days), dtype=bool)
    known: dict[int, set[str]] = {}
    for day in sorted(set(days.tolist())):
        cards_known: set[str] = set()
        for d in range(train_first_day, day - delay_days):
            cards_known |= fraud_cards_by_day.get(d, set())
        known[day] = cards_known
    for i, (day, card) in enumerate(zip(days.tolist(), cards, strict=True)):
        if card in known[day]:
            keep[i] = False
    return keep
