"""A small transactions generator in the handbook's CSV format (handbook.py), after the
handbook's simulator: customers with their own spending, terminals near them, and three
kinds of fraud (an amount above 220.00; a compromised terminal, every payment on it fraud
for 28 days; a compromised customer, a third of its payments fraud at 5x for 14 days).
Deterministic for a seed. For tests and quick runs, never a benchmark."""

from __future__ import annotations

import csv
import gzip
import random
from datetime import UTC, datetime
from pathlib import Path

from .handbook import COLUMNS, Transaction, parse_time, transaction

__all__ = ["as_transactions", "simulate", "write_csv"]

DAY = 86_400
Row = tuple[int, str, int, int, int, int, int]


def simulate(
    days: int = 60,
    customers: int = 300,
    terminals: int = 300,
    seed: int = 1,
    start: str = "2018-04-01",
    compromised_terminals_per_day: float = 0.5,
    compromised_customers_per_day: float = 0.5,
) -> list[Row]:
    rng = random.Random(seed)
    t0 = datetime.strptime(start, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
    profile = []
    for _ in range(customers):
        mean = rng.uniform(500, 10_000)
        near = rng.sample(range(terminals), k=min(terminals, 5))
        profile.append((mean, mean / 2, rng.uniform(0, 4), near))
    bad_terminal: dict[int, int] = {}  # terminal -> last compromised day
    bad_customer: dict[int, int] = {}
    events: list[tuple[float, int, int, int, int, int]] = []
    for day in range(days):
        if rng.random() < compromised_terminals_per_day:
            bad_terminal[rng.randrange(terminals)] = day + 27
        if rng.random() < compromised_customers_per_day:
            bad_customer[rng.randrange(customers)] = day + 13
        for c, (mean, std, rate, near) in enumerate(profile):
            for _ in range(int(rate) + (1 if rng.random() < rate - int(rate) else 0)):
                at = t0 + day * DAY + rng.randrange(DAY)
                amount = max(1, int(rng.gauss(mean, std)))
                term = rng.choice(near)
                fraud, scenario = 0, 0
                if bad_customer.get(c, -1) >= day and rng.random() < 1 / 3:
                    amount, fraud, scenario = amount * 5, 1, 3
                if bad_terminal.get(term, -1) >= day:
                    fraud, scenario = 1, 2
                if amount > 22_000:
                    fraud, scenario = 1, scenario or 1
                events.append((at, c, term, amount, fraud, scenario))
    events.sort()
    return [
        (i, datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S"), c, term, amount, f, s)
        for i, (at, c, term, amount, f, s) in enumerate(events)
    ]


def write_csv(path: str | Path, rows: list[Row]) -> Path:
    p = Path(path)
    opener = gzip.open if p.suffix == ".gz" else open
    with opener(p, "wt", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        w.writerows(rows)
    return p


def as_transactions(rows: list[Row]) -> list[Transaction]:
    """The rows as the file reader would give them."""
    return [transaction(r, parse_time(r[1])) for r in rows]
