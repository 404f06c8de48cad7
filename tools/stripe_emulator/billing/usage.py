"""Billing meters' usage: accepted meter events, kept per (meter, customer) in time order.

Each accepted event is also stored (kind `billing.meter_event`, under an internal id built
from its identifier) so a SQLite store restores the same usage; the in-memory series are
rebuilt from those. A canceled event leaves its series but stays stored, marked canceled.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator
from decimal import Decimal
from weakref import WeakKeyDictionary

from ..state import Emulator, on_restore
from ..store import Obj

__all__ = ["EVENT_KIND", "Usage", "aggregate", "event_key", "usage_of"]

EVENT_KIND = "billing.meter_event"
# (timestamp, arrival sequence, value, identifier): sorted by time, ties by arrival
Point = tuple[int, int, Decimal, str]


def event_key(account: str, identifier: str) -> str:
    """The store id of a meter event: identifiers are unique per account, not globally."""
    return f"emulator.mev:{account}:{identifier}"


class Usage:
    def __init__(self) -> None:
        self.series: dict[tuple[str, str, str], list[Point]] = {}
        self.seq = 0

    def add(
        self, account: str, meter: str, customer: str, ts: int, value: Decimal, identifier: str
    ) -> None:
        self.seq += 1
        insort(
            self.series.setdefault((account, meter, customer), []),
            (ts, self.seq, value, identifier),
        )

    def remove(self, account: str, meter: str, customer: str, identifier: str) -> None:
        points = self.series.get((account, meter, customer), [])
        for i, point in enumerate(points):
            if point[3] == identifier:
                del points[i]
                return

    def window(
        self, account: str, meter: str, customer: str, start: int, end: int
    ) -> Iterator[Point]:
        points = self.series.get((account, meter, customer), [])
        i = bisect_left(points, (start, -1, Decimal(0), ""))
        while i < len(points) and points[i][0] < end:
            yield points[i]
            i += 1


_STATE: WeakKeyDictionary[Emulator, Usage] = WeakKeyDictionary()


def usage_of(em: Emulator) -> Usage:
    state = _STATE.get(em)
    if state is None:
        state = _STATE[em] = Usage()
        em.reset_hooks.append(lambda _em: state.series.clear())
    return state


def aggregate(meter: Obj, points: list[Point]) -> Decimal:
    """A meter's formula over the points of one window (pre-aggregated windows first)."""
    window = meter.get("event_time_window")
    if window:
        size = 3600 if window == "hour" else 86_400
        latest: dict[int, Point] = {}
        for point in points:  # the latest event received in each window replaces the others
            bucket = point[0] // size
            if bucket not in latest or point[1] > latest[bucket][1]:
                latest[bucket] = point
        points = sorted(latest.values())
    formula = meter["default_aggregation"]["formula"]
    if formula == "count":
        return Decimal(len(points))
    if formula == "last":
        return points[-1][2] if points else Decimal(0)
    return sum((p[2] for p in points), Decimal(0))


@on_restore
def _restore(em: Emulator) -> None:
    state = usage_of(em)
    for account in em.store.accounts_with(EVENT_KIND):
        for key in em.store.iter_ids(account, EVENT_KIND, newest_first=False):
            ev = em.store.get(key)
            if ev is None or ev.get("_canceled"):
                continue
            state.add(
                account,
                ev["_meter"],
                ev["_customer"],
                int(ev["timestamp"]),
                Decimal(ev["_value"]),
                ev["identifier"],
            )
