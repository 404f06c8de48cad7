"""`python -m stripe_emulator --host 127.0.0.1 --port 12111`"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from .config import Billing, Config
from .server import serve

__all__ = ["billing_settings", "main", "parse_args"]


def _rate(value: str) -> float | None:
    return None if value.lower() in ("off", "none", "0") else float(value)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="stripe_emulator", description="A stateful Stripe API emulator"
    )
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=12111)
    ap.add_argument(
        "--rate-limit",
        type=_rate,
        default=25.0,
        help="global requests/s per account (25 = test mode, 100 = live, 'off')",
    )
    ap.add_argument(
        "--endpoint-rate-limit",
        type=_rate,
        default=None,
        help="per-endpoint requests/s (default: same as --rate-limit)",
    )
    ap.add_argument("--db", default=None, help="keep state in this SQLite file (default: memory)")
    ap.add_argument("--seed", type=int, default=None, help="seed for ids and injected faults")
    ap.add_argument("--log-level", default="INFO")
    billing = ap.add_argument_group("billing (also GET/POST /_emulator/config, key `billing`)")
    billing.add_argument(
        "--retry-days",
        type=_days,
        default=None,
        help="dunning: retries at these days after the first failed attempt "
        "(default 1,3,5,7,9,11,14: Smart Retries' 8 tries in 2 weeks)",
    )
    billing.add_argument(
        "--end-action",
        choices=Billing.ACTIONS,
        default=None,
        help="the subscription after the last retry fails (default cancel)",
    )
    billing.add_argument(
        "--end-invoice-action",
        choices=Billing.INVOICE_ACTIONS,
        default=None,
        help="the invoice after the last retry fails (default past_due: left open)",
    )
    billing.add_argument(
        "--upcoming-days",
        type=_optional_int,
        default="7",
        help="invoice.upcoming this many days before a renewal ('off' for none; default 7)",
    )
    billing.add_argument(
        "--tax-jurisdictions",
        type=_jurisdictions,
        default=None,
        help='automatic tax rates: JSON like {"US-CA": {"percentage": 7.25}} or @file.json',
    )
    return ap.parse_args(argv)


def _days(value: str) -> list[float]:
    try:
        days = [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of days: {value!r}") from None
    if not days or days != sorted(days) or days[0] <= 0:
        raise argparse.ArgumentTypeError(f"days must be increasing and positive: {value!r}")
    return days


def _optional_int(value: str) -> int | None:
    return None if value.lower() in ("off", "none") else int(value)


def _jurisdictions(value: str) -> dict[str, Any]:
    text = Path(value[1:]).read_text() if value.startswith("@") else value
    try:
        table = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(table, dict):
        raise argparse.ArgumentTypeError("a JSON object: jurisdiction -> {percentage, ...}")
    return table


def billing_settings(args: argparse.Namespace) -> Billing:
    """The Billing settings the command line asks for (Stripe's defaults otherwise)."""
    billing = Billing()
    values: dict[str, Any] = {"upcoming_renewal_days": args.upcoming_days}
    if args.retry_days is not None:
        values["retry_days"] = args.retry_days
    if args.end_action is not None:
        values["end_action"] = args.end_action
    if args.end_invoice_action is not None:
        values["end_invoice_action"] = args.end_invoice_action
    if args.tax_jurisdictions is not None:
        values["tax_jurisdictions"] = args.tax_jurisdictions
    billing.update(values)
    return billing


def _tune_gc() -> None:
    """Keep the garbage collector's cost flat as the store grows.

    With 200 requests in flight, each young collection promotes the objects of the requests
    still running, so full collections came every few thousand requests and each walked the
    whole heap: at 100,000 PaymentIntents they took nearly a fifth of the CPU (about 3 %, flat,
    with this). What exists once the server is up (modules, routes, the app) lives as long as
    the process: freeze it out of every pass. Collect young objects less often, so fewer
    in-flight objects get promoted.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    config = Config(
        global_rate=args.rate_limit,
        endpoint_rate=args.endpoint_rate_limit
        if args.endpoint_rate_limit is not None
        else args.rate_limit,
        seed=args.seed,
        billing=billing_settings(args),
    )
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a locked dependency
        pass

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with serve(config, args.host, args.port, store_path=args.db) as server:
            _tune_gc()
            print(f"stripe emulator listening on http://{args.host}:{server.port}", flush=True)
            await stop.wait()

    try:
        asyncio.run(run())
    except OSError as exc:
        print(f"stripe emulator: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
