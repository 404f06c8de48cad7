"""Billing periods: where a recurring interval's boundaries fall.

Boundaries are always counted from the billing cycle anchor, never from the previous
boundary, so a subscription anchored on the 31st bills on the last day of shorter months and
returns to the 31st afterwards (Jan 31, Feb 28, Mar 31), as Stripe's anchors behave.
"""

from __future__ import annotations

import calendar
import datetime as dt

__all__ = [
    "DAY",
    "MAX_COUNT",
    "anchor_from_config",
    "boundary",
    "fmt_date",
    "next_boundary",
    "shift",
]

DAY = 86_400
_UTC = dt.UTC
# Stripe's longest billing period is three years.
MAX_COUNT = {"day": 1095, "week": 156, "month": 36, "year": 3}


def _add_months(ts: int, months: int) -> int:
    d = dt.datetime.fromtimestamp(ts, _UTC)
    total = d.year * 12 + (d.month - 1) + months
    year, month = divmod(total, 12)
    month += 1
    day = min(d.day, calendar.monthrange(year, month)[1])
    return int(d.replace(year=year, month=month, day=day).timestamp())


def shift(ts: int, interval: str, count: int) -> int:
    """`ts` moved by `count` intervals (negative moves back)."""
    if interval == "day":
        return ts + count * DAY
    if interval == "week":
        return ts + count * 7 * DAY
    if interval == "month":
        return _add_months(ts, count)
    if interval == "year":
        return _add_months(ts, 12 * count)
    raise ValueError(interval)


def boundary(anchor: int, interval: str, count: int, k: int) -> int:
    """The k-th period boundary counted from the anchor (k may be negative)."""
    return shift(anchor, interval, count * k)


def next_boundary(anchor: int, interval: str, count: int, after: int) -> int:
    """The first boundary strictly after `after`."""
    if interval in ("day", "week"):
        step = count * (DAY if interval == "day" else 7 * DAY)
        k = (after - anchor) // step + 1
        return anchor + k * step
    a = dt.datetime.fromtimestamp(anchor, _UTC)
    t = dt.datetime.fromtimestamp(after, _UTC)
    months = (t.year - a.year) * 12 + (t.month - a.month)
    per = count * (12 if interval == "year" else 1)
    k = months // per - 1
    while True:
        b = boundary(anchor, interval, count, k)
        if b > after:
            return b
        k += 1


def anchor_from_config(
    start: int,
    interval: str,
    day_of_month: int | None,
    month: int | None,
    hour: int | None,
    minute: int | None,
    second: int | None,
) -> int:
    """The first moment at or after `start` matching billing_cycle_anchor_config."""
    s = dt.datetime.fromtimestamp(start, _UTC)
    year, mon = s.year, (month if month is not None and interval == "year" else s.month)
    for _ in range(30):
        last = calendar.monthrange(year, mon)[1]
        day = min(day_of_month or s.day, last)
        cand = dt.datetime(
            year,
            mon,
            day,
            s.hour if hour is None else hour,
            s.minute if minute is None else minute,
            s.second if second is None else second,
            tzinfo=_UTC,
        )
        if int(cand.timestamp()) >= start:
            return int(cand.timestamp())
        if interval == "year" and month is not None:
            year += 1
        else:
            mon += 1
            if mon > 12:
                year, mon = year + 1, 1
    raise ValueError("no anchor found")  # pragma: no cover - a month always has the day


def fmt_date(ts: int) -> str:
    """Stripe's date in line descriptions: `15 Jan 2025`."""
    return dt.datetime.fromtimestamp(ts, _UTC).strftime("%d %b %Y")
