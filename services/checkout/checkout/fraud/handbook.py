"""Transactions in the Fraud Detection Handbook's CSV format, as payments and labels.

Columns: transaction_id, tx_datetime (ISO, UTC), customer_id, terminal_id, amount_minor,
fraud, fraud_scenario (plain or .gz). customer_id names the customer AND the card (the
handbook's "card"); terminal_id the seller. A fraud's label becomes known `delay_days` after
the transaction (the handbook's label delay). fraud_scenario is kept for analysis only: it
never reaches a feature.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .facts import PaymentFacts

__all__ = [
    "COLUMNS",
    "Transaction",
    "day_of",
    "parse_day",
    "parse_time",
    "read_transactions",
    "transaction",
]

COLUMNS = (
    "transaction_id",
    "tx_datetime",
    "customer_id",
    "terminal_id",
    "amount_minor",
    "fraud",
    "fraud_scenario",
)
DAY = 86_400
CURRENCY = "usd"  # the handbook's amounts carry no currency


@dataclass(frozen=True, slots=True)
class Transaction:
    """A payment as the replay feeds it: its facts, how it ended, and its fraud label."""

    facts: PaymentFacts
    fraud: int  # 1: a fraud label exists (ground truth, as it is eventually known)
    scenario: int = 0  # the handbook's fraud_scenario: analysis only
    known_at: float | None = None  # the label's time; None: the payment's time + the delay
    succeeded: bool | None = True  # None: no outcome (a cancelled authorisation)
    never_retry: bool = False  # a decline whose advice is never to retry
    radar_score: int | None = None
    radar_level: str = ""

    def label_time(self, delay_days: float) -> float | None:
        if not self.fraud:
            return None
        return self.known_at if self.known_at is not None else self.facts.at + delay_days * DAY


def parse_day(text: str) -> float:
    """'2018-08-08' -> unix seconds at 00:00 UTC."""
    return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()


def parse_time(text: str) -> float:
    """'2018-08-08T10:11:12' (UTC) -> unix seconds."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()


def day_of(ts: float) -> int:
    return int(ts // DAY)


def _open(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def read_transactions(
    path: str | Path, since: float | None = None, until: float | None = None
) -> Iterator[Transaction]:
    """The file's rows with since <= time < until, in file order (the file must be in time
    order: a row earlier than its predecessor is refused, since replaying it late would let
    features see its future)."""
    days: dict[str, float] = {}
    last = -1.0
    with _open(Path(path)) as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != COLUMNS:
            raise ValueError(f"{path}: expected the columns {','.join(COLUMNS)}")
        for line, row in enumerate(reader, start=2):
            stamp = row[1]
            base = days.get(stamp[:10])
            if base is None:
                base = days[stamp[:10]] = parse_day(stamp[:10])
            at = base + int(stamp[11:13]) * 3600 + int(stamp[14:16]) * 60 + int(stamp[17:19])
            if at < last:
                raise ValueError(f"{path}:{line}: rows are not in time order")
            last = at
            if since is not None and at < since:
                continue
            if until is not None and at >= until:
                break
            yield transaction(row, at)


def transaction(row: Sequence[object], at: float) -> Transaction:
    """One row (the file's columns) at `at` (unix seconds)."""
    customer = f"c{row[2]}"
    return Transaction(
        facts=PaymentFacts(
            payment_id=str(row[0]),
            at=at,
            amount=int(str(row[4])),
            currency=CURRENCY,
            customer=customer,
            card=customer,
            seller=f"t{row[3]}",
        ),
        fraud=int(str(row[5])),
        scenario=int(str(row[6])),
    )
