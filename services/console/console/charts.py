"""Small inline SVG charts, drawn on the server: no script, no external resource.

Colours and fonts are presentation attributes (not `style`), so the Content-Security-Policy
needs no 'unsafe-inline'. Every chart has a <title> and a text fallback for screen readers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from markupsafe import Markup, escape

__all__ = ["PALETTE", "contributions_chart", "stacked_bars_by_day"]

PALETTE = ("#3b6ea8", "#d0813b", "#5a9e5a", "#b04a4a", "#8a6bb5", "#7f7f7f", "#c7a02c", "#3aa3a3")
_TEXT = "#333333"
_GRID = "#dddddd"


def _text(x: float, y: float, label: str, *, anchor: str = "start", size: int = 11) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{_TEXT}" '
        f'text-anchor="{anchor}" font-family="sans-serif">{escape(label)}</text>'
    )


def stacked_bars_by_day(
    title: str, days: Sequence[date], series: Mapping[str, Mapping[date, int]]
) -> Markup:
    """One bar per day, stacked by series (e.g. discrepancies found per day by kind)."""
    width, height, left, bottom, top = 720, 220, 40, 40, 20
    names = sorted(series)
    totals = [sum(series[n].get(d, 0) for n in names) for d in days]
    peak = max([*totals, 1])
    plot_h = height - bottom - top
    slot = (width - left - 10) / max(len(days), 1)
    bar_w = max(slot * 0.7, 1.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height + 18 * ((len(names) + 3) // 4)}" '
        f'width="{width}" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for tick in sorted({0, peak // 2, peak}):
        y = top + plot_h - plot_h * tick / peak
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" stroke="{_GRID}"/>'
        )
        parts.append(_text(left - 6, y + 4, str(tick), anchor="end"))
    for i, day in enumerate(days):
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h
        for k, name in enumerate(names):
            count = series[name].get(day, 0)
            if not count:
                continue
            h = plot_h * count / peak
            y -= h
            colour = PALETTE[k % len(PALETTE)]
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{escape(f"{day.isoformat()} {name}: {count}")}'
                "</title></rect>"
            )
        if len(days) <= 16 or i % max(len(days) // 8, 1) == 0:
            parts.append(_text(x + bar_w / 2, height - bottom + 14, day.strftime("%m-%d"),
                               anchor="middle", size=10))  # fmt: skip
    for k, name in enumerate(names):
        lx = left + (k % 4) * 170
        ly = height + 4 + 18 * (k // 4)
        parts.append(
            f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" '
            f'fill="{PALETTE[k % len(PALETTE)]}"/>'
        )
        parts.append(_text(lx + 14, ly, f"{name} ({sum(series[name].values())})"))
    if not names:
        parts.append(_text(width / 2, top + plot_h / 2, "nothing in this period", anchor="middle"))
    parts.append("</svg>")
    return Markup("".join(parts))


def contributions_chart(title: str, items: Sequence[tuple[str, float]]) -> Markup:
    """Horizontal bars from a zero line: each feature's contribution to the fraud logit
    (right, red: towards fraud; left, green: away from it). Features that contributed
    nothing are left out (the table beside it lists them)."""
    rows = sorted((i for i in items if abs(i[1]) >= 5e-4), key=lambda item: -abs(item[1]))
    width, label_w, row_h = 720, 240, 20
    height = 20 + row_h * max(len(rows), 1)
    peak = max([abs(v) for _, v in rows] + [1e-9])
    half = (width - label_w - 70) / 2
    zero = label_w + half
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{zero:.1f}" y1="4" x2="{zero:.1f}" y2="{height - 4}" stroke="{_TEXT}"/>',
    ]
    for i, (name, value) in enumerate(rows):
        y = 10 + i * row_h
        w = half * abs(value) / peak
        x = zero if value >= 0 else zero - w
        colour = "#b04a4a" if value >= 0 else "#5a9e5a"
        parts.append(_text(label_w - 8, y + 11, name, anchor="end"))
        parts.append(
            f'<rect x="{x:.1f}" y="{y}" width="{max(w, 0.5):.1f}" height="{row_h - 6}" '
            f'fill="{colour}"><title>{escape(f"{name}: {value:+.3f}")}</title></rect>'
        )
        tx = zero + w + 4 if value >= 0 else zero - w - 4
        parts.append(_text(tx, y + 11, f"{value:+.3f}", anchor="start" if value >= 0 else "end"))
    if not rows:
        parts.append(_text(width / 2, 24, "no features recorded", anchor="middle"))
    parts.append("</svg>")
    return Markup("".join(parts))
