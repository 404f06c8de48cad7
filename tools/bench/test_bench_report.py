"""The bench's argument parsing and report formatting on made-up numbers (no servers, no timing)."""

from __future__ import annotations

import math

import pytest

from bench.__main__ import parse_args
from bench.report import GIB, Measurement, format_rss, format_table, percentile, verdicts


def _m(server: str, size: int, mode: str, rate: float, client_cpu: float = 0.5) -> Measurement:
    n = int(rate * 10)
    return Measurement(
        server=server, size=size, mode=mode, in_flight=1 if mode == "sequential" else 200,
        ok=n, errors=0, elapsed=10.0, latencies=[0.001 * (i % 100 + 1) for i in range(n)],
        server_cpu=8.0, client_cpu=client_cpu * 10,
    )  # fmt: skip


def test_parse_args_defaults_and_quick() -> None:
    args = parse_args([])
    assert args.sizes == (0, 10_000, 100_000)
    assert args.localstripe_sizes == (0, 1_500)
    assert args.duration == 10.0
    assert args.servers == ["emulator", "localstripe"]
    quick = parse_args(["--quick", "--sizes", "100_000,0,10", "--duration", "2"])
    assert quick.sizes == (0, 10, 100_000)
    assert quick.localstripe_sizes == (0, 300)
    assert quick.duration == 2.0


@pytest.mark.parametrize(
    "argv", [["--sizes", "a"], ["--sizes", "-1"], ["--duration", "0"], ["--servers", "x"]]
)
def test_parse_args_refuses(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv)


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([3.0], 99) == 3.0
    assert math.isnan(percentile([], 50))


def test_table_and_verdicts_met() -> None:
    rows = [
        _m("emulator", 0, "sequential", 1000.0),
        _m("emulator", 0, "concurrent", 3000.0),
        _m("emulator", 100_000, "sequential", 950.0),
        _m("emulator", 100_000, "concurrent", 2700.0),
        _m("localstripe", 0, "concurrent", 150.0),
    ]
    table = format_table(rows).splitlines()
    assert table[0].split()[:3] == ["server", "store", "mode"]
    assert len(table) == 2 + len(rows)
    assert "100,000" in table[4] and "2,700.0" in table[5]
    lines = verdicts(rows, rss_kib=600 * 1024)
    assert len(lines) == 3
    assert lines[0].startswith("emulator >= 3x")
    assert ": met (3,000 / 150 PIs/s = 20.00x)" in lines[0]
    assert ": met (" in lines[1] and "largest change 10%" in lines[1]
    assert ": met (600 MiB = 0.59 of the limit)" in lines[2]


def test_verdicts_not_met_and_missing() -> None:
    rows = [
        _m("emulator", 0, "concurrent", 400.0, client_cpu=0.95),
        _m("emulator", 10_000, "concurrent", 200.0),
        _m("localstripe", 0, "concurrent", 150.0),
    ]
    lines = verdicts(rows, rss_kib=GIB // 1024 + 1)
    assert "NOT MET (400 / 150 PIs/s = 2.67x; the client was saturated" in lines[0]
    assert "NOT MET (concurrent 10,000: 0.50x; largest change 50%)" in lines[1]
    assert "NOT MET" in lines[2]
    missing = verdicts([], rss_kib=None)
    assert all("not evaluated" in line for line in missing)
    assert "not measured" in format_rss(100_000, None, None)
    assert "512.0 MiB (VmRSS)" in format_rss(100_000, 512 * 1024, 600 * 1024)
