"""Payments through the feature pipeline in time order, as the live service sees them.

    for txn in replay(transactions, pipeline, delay_days=7):
        vec = pipeline.features(txn.facts)      # the consumer decides, scores, ...
    # after each step the payment is recorded (with its outcome); fraud labels are applied
    # at their label time (the transaction's known_at, else its time + the delay), before
    # the first payment at or after it

So a payment's features see only earlier payments and only the labels known by then.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator

from .handbook import Transaction
from .pipeline import FeaturePipeline

__all__ = ["replay"]


def replay(
    transactions: Iterable[Transaction], pipeline: FeaturePipeline, delay_days: float
) -> Iterator[Transaction]:
    pending: list[tuple[float, int, Transaction]] = []
    seq = 0
    for txn in transactions:
        at = txn.facts.at
        while pending and pending[0][0] <= at:
            pipeline.label(heapq.heappop(pending)[2].facts)
        yield txn
        pipeline.record(
            txn.facts,
            succeeded=txn.succeeded,
            never_retry=txn.never_retry,
            radar_score=txn.radar_score,
            radar_level=txn.radar_level,
        )
        label_at = txn.label_time(delay_days)
        if label_at is not None:
            seq += 1
            heapq.heappush(pending, (max(label_at, at), seq, txn))
