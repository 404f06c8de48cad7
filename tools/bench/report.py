"""Turning measurements into the table, the memory line and one verdict per target."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "GIB",
    "Measurement",
    "Targets",
    "format_table",
    "percentile",
    "verdicts",
]

GIB = 1 << 30
SEQUENTIAL = "sequential"
CONCURRENT = "concurrent"
CLIENT_BOUND = 0.9  # client CPU share of one core above which the client limits a run
# Server + client CPU (share of one core) below which other work on the machine took the
# cores: a lone sequential run keeps one core busy between them, a concurrent one nearly two.
BUSY_BELOW = {SEQUENTIAL: 0.85, CONCURRENT: 1.2}


@dataclass
class Measurement:
    server: str
    size: int  # PaymentIntents in the store before the measured run (nominal)
    mode: str  # SEQUENTIAL or CONCURRENT
    in_flight: int
    ok: int
    errors: int
    elapsed: float
    latencies: Sequence[float]  # seconds
    server_cpu: float = 0.0  # CPU seconds the server used during the run
    client_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def server_ms(self) -> float:
        """Server CPU per call made: unlike PIs/s, other load on the machine barely moves it."""
        return 1000.0 * self.server_cpu / self.ok if self.ok else math.nan

    @property
    def contended(self) -> bool:
        """The two processes got well under the cores they could use: something else ran."""
        if self.elapsed <= 0 or self.mode not in BUSY_BELOW:
            return False
        return (self.server_cpu + self.client_cpu) / self.elapsed < BUSY_BELOW[self.mode]

    def latency_ms(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000.0


@dataclass(frozen=True)
class Targets:
    speedup: float = 3.0  # emulator / localstripe, concurrent, empty store
    flat: float = 0.20  # largest allowed change from the empty store
    rss_bytes: int = GIB
    rss_at: int = 100_000


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _num(value: float, digits: int = 1) -> str:
    return "-" if math.isnan(value) else f"{value:,.{digits}f}"


def format_table(rows: Sequence[Measurement]) -> str:
    header = (
        "server", "store", "mode", "in flight", "ok", "errors", "PIs/s", "p50 ms", "p99 ms",
        "server CPU", "client CPU", "server ms/PI", "machine",
    )  # fmt: skip
    lines = [header]
    for m in rows:
        cpu = m.elapsed if m.elapsed > 0 else math.nan
        lines.append(
            (
                m.server,
                f"{m.size:,}",
                m.mode,
                str(m.in_flight),
                f"{m.ok:,}",
                f"{m.errors:,}",
                _num(m.rate),
                _num(m.latency_ms(50), 2),
                _num(m.latency_ms(99), 2),
                _num(100.0 * m.server_cpu / cpu, 0) + " %",
                _num(100.0 * m.client_cpu / cpu, 0) + " %",
                _num(m.server_ms, 3),
                "busy" if m.contended else "",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    left = {0, 2, len(header) - 1}  # text columns; numbers align right
    out = []
    for n, line in enumerate(lines):
        cells = [
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _find(rows: Sequence[Measurement], server: str, size: int, mode: str) -> Measurement | None:
    for m in rows:
        if m.server == server and m.size == size and m.mode == mode and m.ok > 0:
            return m
    return None


def format_rss(size: int, rss_kib: int | None, hwm_kib: int | None) -> str:
    if rss_kib is None:
        return f"emulator RSS at {size:,} PaymentIntents: not measured"
    line = f"emulator RSS at {size:,} PaymentIntents: {rss_kib / 1024:,.1f} MiB (VmRSS)"
    if hwm_kib is not None:
        line += f", peak {hwm_kib / 1024:,.1f} MiB (VmHWM) by the end of the runs at that size"
    return line


def verdicts(
    rows: Sequence[Measurement],
    rss_kib: int | None,
    targets: Targets = Targets(),
    emulator: str = "emulator",
    localstripe: str = "localstripe",
) -> list[str]:
    """One line per target: met / not met, with the ratio it was judged on."""
    out: list[str] = []

    emu0 = _find(rows, emulator, 0, CONCURRENT)
    ls0 = _find(rows, localstripe, 0, CONCURRENT)
    label = f"emulator >= {targets.speedup:g}x localstripe, concurrent, empty store"
    if emu0 is None or ls0 is None:
        out.append(f"{label}: not evaluated (a concurrent run at store size 0 is missing)")
    else:
        ratio = emu0.rate / ls0.rate
        ok = ratio >= targets.speedup
        bound = ""
        if emu0.elapsed > 0 and emu0.client_cpu / emu0.elapsed >= CLIENT_BOUND:
            bound = "; the client was saturated, so the emulator's figure is a lower bound"
        out.append(
            f"{label}: {'met' if ok else 'NOT MET'} "
            f"({emu0.rate:,.0f} / {ls0.rate:,.0f} PIs/s = {ratio:.2f}x{bound})"
        )

    label = f"emulator flat as the store grows (within {targets.flat:.0%} of the empty store)"
    parts: list[str] = []
    cpu_parts: list[str] = []
    busy = False
    worst = 0.0
    sizes = sorted({m.size for m in rows if m.server == emulator and m.size > 0})
    for mode in (CONCURRENT, SEQUENTIAL):
        base = _find(rows, emulator, 0, mode)
        if base is None:
            continue
        for size in sizes:
            m = _find(rows, emulator, size, mode)
            if m is None:
                continue
            ratio = m.rate / base.rate
            worst = max(worst, abs(ratio - 1.0))
            parts.append(f"{mode} {size:,}: {ratio:.2f}x")
            cpu_parts.append(f"{mode} {size:,}: {m.server_ms / base.server_ms:.2f}x")
            busy = busy or m.contended or base.contended
    if not parts:
        out.append(f"{label}: not evaluated (needs store size 0 and a larger one)")
    else:
        ok = worst <= targets.flat
        out.append(
            f"{label}: {'met' if ok else 'NOT MET'} ({'; '.join(parts)}; "
            f"largest change {worst:.0%}); server CPU per PI vs empty: {'; '.join(cpu_parts)}"
            + (
                "; rows marked busy ran while other work held the cores, so their PIs/s "
                "understate the server (server ms/PI does not depend on that)"
                if busy
                else ""
            )
        )

    label = f"emulator RSS under {targets.rss_bytes / GIB:g} GiB at {targets.rss_at:,} PIs"
    if rss_kib is None:
        out.append(f"{label}: not evaluated (no run at store size {targets.rss_at:,})")
    else:
        ratio = rss_kib * 1024 / targets.rss_bytes
        ok = ratio < 1.0
        out.append(
            f"{label}: {'met' if ok else 'NOT MET'} "
            f"({rss_kib / 1024:,.0f} MiB = {ratio:.2f} of the limit)"
        )
    return out
