"""`python -m bench [--quick] [--sizes 0,10000,100000] [--duration 10]` (see --help)."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from .load import CLIENTS, MAX_IN_FLIGHT, OPERATIONS, Operation, RunResult, make_client, run_load
from .report import (
    CONCURRENT,
    SEQUENTIAL,
    Measurement,
    Targets,
    format_rss,
    format_table,
    verdicts,
)
from .servers import EMULATOR, LOCALSTRIPE, ServerProcess

__all__ = ["main", "parse_args"]

DEFAULT_SIZES = (0, 10_000, 100_000)
DEFAULT_LOCALSTRIPE_SIZES = (0, 1_500)
QUICK_SIZES = (0, 2_000)
QUICK_LOCALSTRIPE_SIZES = (0, 300)
WARMUP = 20  # sequential calls on every fresh server before it is filled or measured


def _sizes(value: str) -> tuple[int, ...]:
    try:
        sizes = tuple(sorted({int(v.replace("_", "")) for v in value.split(",") if v.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {value!r}") from None
    if not sizes or sizes[0] < 0:
        raise argparse.ArgumentTypeError(f"store sizes must be >= 0: {value!r}")
    return sizes


def _positive(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {value!r}")
    return number


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench",
        description="PaymentIntent create+confirm throughput of the Stripe emulator and of "
        "localstripe through stripe-python, and the emulator's memory at 100,000 PIs.",
    )
    ap.add_argument("--quick", action="store_true", help="small sizes and short runs (smoke)")
    ap.add_argument(
        "--sizes", type=_sizes, default=None,
        help="emulator store sizes in PaymentIntents (default 0,10000,100000; quick 0,2000)",
    )  # fmt: skip
    ap.add_argument(
        "--localstripe-sizes", type=_sizes, default=None,
        help="localstripe store sizes (default 0,1500; quick 0,300)",
    )  # fmt: skip
    ap.add_argument(
        "--duration", type=_positive, default=None,
        help="seconds per measured run (default 10; quick 3)",
    )  # fmt: skip
    ap.add_argument(
        "--max-requests", type=int, default=None,
        help="calls per measured run at most (default 30000; quick 5000)",
    )  # fmt: skip
    ap.add_argument("--concurrency", type=int, default=MAX_IN_FLIGHT, help="calls in flight")
    ap.add_argument(
        "--fill-timeout", type=_positive, default=600.0,
        help="seconds allowed to fill one store (default 600)",
    )  # fmt: skip
    ap.add_argument(
        "--servers", default=f"{EMULATOR},{LOCALSTRIPE}",
        help="which servers, comma-separated (default emulator,localstripe)",
    )  # fmt: skip
    ap.add_argument(
        "--client", choices=CLIENTS, default="aiohttp",
        help="the SDK's async HTTP client, the same for every server (default aiohttp)",
    )  # fmt: skip
    ap.add_argument(
        "--op", choices=sorted(OPERATIONS), default="payment_intent",
        help="what each call does (customer only checks the harness)",
    )  # fmt: skip
    ap.add_argument(
        "--localstripe-no-pickle", action="store_true",
        help="stop localstripe pickling its store on every write (not how it ships)",
    )  # fmt: skip
    args = ap.parse_args(argv)
    args.sizes = args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    args.localstripe_sizes = args.localstripe_sizes or (
        QUICK_LOCALSTRIPE_SIZES if args.quick else DEFAULT_LOCALSTRIPE_SIZES
    )
    args.duration = args.duration or (3.0 if args.quick else 10.0)
    args.max_requests = args.max_requests or (5_000 if args.quick else 30_000)
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = set(servers) - {EMULATOR, LOCALSTRIPE}
    if unknown or not servers:
        ap.error(f"--servers: choose from {EMULATOR},{LOCALSTRIPE}")
    args.servers = servers
    if args.concurrency < 1 or args.concurrency > MAX_IN_FLIGHT:
        ap.error(f"--concurrency must be 1..{MAX_IN_FLIGHT}")
    if args.max_requests < 1:
        ap.error("--max-requests must be >= 1")
    return args


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _emulator_source() -> str:
    """Where `python -m stripe_emulator` comes from here, and its git revision."""
    spec = importlib.util.find_spec("stripe_emulator")
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        return "stripe_emulator not importable"
    root = Path(locations[0]).resolve()
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        rev = ""
    return f"stripe_emulator from {root} (git {rev or 'revision unknown'})"


def header(args: argparse.Namespace, op: Operation) -> list[str]:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    names = ["stripe", "aiohttp", *(["httpx"] if args.client == "httpx" else []), "localstripe"]
    packages = ", ".join(f"{name} {_version(name)}" for name in [*names, "uvloop"])
    return [
        f"payplane bench: {op.description}",
        f"versions: Python {platform.python_version()}, {packages}; {_emulator_source()}",
        f"machine: {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"load average {load} at start",
        f"client: stripe.StripeClient async API ({args.client}, pool of {MAX_IN_FLIGHT}, "
        "no retries) on uvloop in this process, the same for both servers; each server is a "
        "fresh process on 127.0.0.1 per row, filled by the same calls with "
        f"{args.concurrency} in flight",
        "emulator: python -m stripe_emulator --rate-limit off (uvloop); localstripe: its "
        "aiohttp app on loopback, empty at start, "
        + ("store pickling switched OFF" if args.localstripe_no_pickle else
           "pickling its store on every write as shipped, into a file on tmpfs"),
        f"runs: {args.duration:g} s or {args.max_requests:,} calls each, whichever ends first; "
        f"sequential = 1 in flight, concurrent = {args.concurrency} in flight; up to {WARMUP} "
        "warm-up calls first (1 for an empty store), counted in the store size",
    ]  # fmt: skip


def _say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _errors(result: RunResult) -> str:
    return "; ".join(f"{n} x {kind}" for kind, n in result.error_kinds.most_common(3))


async def measure_one(
    args: argparse.Namespace, op: Operation, server: str, size: int, mode: str, rss_size: int
) -> tuple[Measurement, dict[str, int] | None, list[str]]:
    """A fresh server: warm up, fill to `size`, measure one run. Returns notes to print."""
    notes: list[str] = []
    srv = ServerProcess(server, localstripe_pickle=not args.localstripe_no_pickle)
    srv.start()
    memory: dict[str, int] | None = None
    try:
        sdk = make_client(srv.url, args.client)
        try:
            warm = await run_load(
                sdk.stripe, op, in_flight=1, duration=30, max_requests=min(WARMUP, max(size, 1))
            )
            if warm.ok == 0:
                raise RuntimeError(f"{server}: every warm-up call failed: {_errors(warm)}")
            created = warm.ok
            if size > created:
                _say(f"{server}: filling to {size:,} PaymentIntents")
                fill = await run_load(
                    sdk.stripe, op, in_flight=args.concurrency, duration=args.fill_timeout,
                    max_requests=size - created, first_n=created,
                )  # fmt: skip
                created += fill.ok
                _say(f"{server}: filled {fill.ok:,} in {fill.elapsed:.1f} s ({fill.rate:,.0f}/s)")
                if created < size:
                    notes.append(
                        f"note: {server} {mode} reached only {created:,} of {size:,} PIs "
                        f"while filling ({_errors(fill) or 'time ran out'})"
                    )
            if server == EMULATOR and size == rss_size:
                memory = srv.memory_kib()
            in_flight = 1 if mode == SEQUENTIAL else args.concurrency
            _say(f"{server}: store {created:,}, measuring {mode} ({in_flight} in flight)")
            result = await run_load(
                sdk.stripe, op, in_flight=in_flight, duration=args.duration,
                max_requests=args.max_requests, first_n=created, server_cpu=srv.cpu_seconds,
            )  # fmt: skip
            if memory is not None:
                memory["VmHWM"] = srv.memory_kib()["VmHWM"]
            _say(f"{server}: {result.ok:,} ok, {result.errors:,} errors, {result.rate:,.0f}/s")
            if result.errors:
                notes.append(f"note: {server} {size:,} {mode} errors: {_errors(result)}")
            if result.aborted:
                notes.append(f"note: {server} {size:,} {mode} stopped early: {result.aborted}")
            if not srv.alive():
                notes.append(f"note: {server} exited during the run:\n{srv.log()}")
        finally:
            await sdk.close()
    finally:
        srv.stop()
    row = Measurement(
        server=server, size=size, mode=mode, in_flight=result.in_flight, ok=result.ok,
        errors=result.errors, elapsed=result.elapsed, latencies=result.latencies,
        server_cpu=result.server_cpu, client_cpu=result.client_cpu,
    )  # fmt: skip
    return row, memory, notes


async def run(args: argparse.Namespace) -> int:
    op = OPERATIONS[args.op]
    for line in header(args, op):
        print(line, flush=True)
    rows: list[Measurement] = []
    notes: list[str] = []
    memory: dict[str, int] | None = None
    rss_size = max(args.sizes)
    plan = [(s, args.sizes if s == EMULATOR else args.localstripe_sizes) for s in args.servers]
    started = time.monotonic()
    for server, sizes in plan:
        for size in sizes:
            for mode in (SEQUENTIAL, CONCURRENT):
                try:
                    row, mem, more = await measure_one(args, op, server, size, mode, rss_size)
                except RuntimeError as exc:
                    notes.append(f"note: {server} {size:,} {mode} not measured: {exc}")
                    _say(str(exc))
                    continue
                rows.append(row)
                notes.extend(more)
                if mem is not None and memory is None:
                    memory = dict(mem)  # VmRSS right after the first fill to that size
                elif mem is not None and memory is not None:
                    memory["VmHWM"] = max(memory.get("VmHWM", 0), mem.get("VmHWM", 0))
    print()
    print(format_table(rows))
    print()
    for note in notes:
        print(note)
    if EMULATOR in args.servers:
        rss = memory.get("VmRSS") if memory else None
        print(format_rss(rss_size, rss, memory.get("VmHWM") if memory else None))
    targets = Targets()
    rss_for_target = memory.get("VmRSS") if memory and rss_size == targets.rss_at else None
    for line in verdicts(rows, rss_for_target, targets):
        print("verdict: " + line)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"(bench took {time.monotonic() - started:.0f} s; load average {load} at the end)")
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a locked dependency
        pass
    raise SystemExit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
