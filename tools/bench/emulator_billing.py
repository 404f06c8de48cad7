"""`python -m bench.emulator_billing [--clock-subs 1000] [--memory-subs 100000]`
(`make bench BENCHES=emulator_billing`): the Stripe emulator's Billing at scale.

1. Test clock: one clock with `--clock-subs` customers, each with a monthly subscription
   paid by card; the clock is advanced by one month (past the renewals and the hour until
   their invoices are finalized and paid), timed from the advance call until the clock
   reports `ready` (polled every 50 ms). Target: at most 2 s for 1,000 subscriptions.
2. Memory: a fresh emulator filled with `--memory-subs` paid monthly subscriptions (a
   customer, a payment method, a subscription, its invoice, PaymentIntent, charge, balance
   transaction and every event each); resident memory of the process afterwards. Target:
   under 1 GiB for 100,000.

The emulator runs as its own process (python -m stripe_emulator --rate-limit off), driven
through the official SDK's async API. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .load import make_client
from .servers import EMULATOR, ServerProcess

__all__ = ["main"]

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
DAY = 86_400
IN_FLIGHT = 64
CLOCK_TARGET_S = 2.0
RSS_TARGET_KIB = 1 << 20  # 1 GiB


def _say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def _fan_out(n: int, call: Callable[[int], Awaitable[None]], what: str) -> float:
    """Run call(0..n-1) with IN_FLIGHT in flight; returns the elapsed seconds."""
    queue = iter(range(n))
    done = 0
    t0 = time.perf_counter()

    async def worker() -> None:
        nonlocal done
        for i in queue:
            await call(i)
            done += 1
            if done % 10_000 == 0:
                rate = done / (time.perf_counter() - t0)
                _say(f"{what}: {done:,} of {n:,} ({rate:,.0f}/s)")

    await asyncio.gather(*(worker() for _ in range(min(IN_FLIGHT, n))))
    return time.perf_counter() - t0


async def _subscriber(client: Any, price_id: str, clock_id: str | None, i: int) -> None:
    params: dict[str, Any] = {
        "email": f"sub{i}@example.com",
        "payment_method": "pm_card_visa",
        "invoice_settings": {"default_payment_method": "pm_card_visa"},
    }
    if clock_id is not None:
        params["test_clock"] = clock_id
    cus = await client.v1.customers.create_async(params=params)
    sub = await client.v1.subscriptions.create_async(
        params={"customer": cus.id, "items": [{"price": price_id}]}
    )
    if sub.status != "active":
        raise RuntimeError(f"subscription {sub.id} is {sub.status}, expected active")


async def _price(client: Any) -> str:
    product = await client.v1.products.create_async(params={"name": "Bench plan"})
    price = await client.v1.prices.create_async(
        params={"currency": "usd", "unit_amount": 2000, "product": product.id,
                "recurring": {"interval": "month"}}
    )  # fmt: skip
    return str(price.id)


async def clock_advance(subs: int) -> dict[str, float]:
    srv = ServerProcess(EMULATOR)
    srv.start()
    sdk = make_client(srv.url, "aiohttp")
    try:
        client = sdk.stripe
        clock = await client.v1.test_helpers.test_clocks.create_async(
            params={"frozen_time": T0, "name": "bench"}
        )
        price_id = await _price(client)
        fill = await _fan_out(
            subs, lambda i: _subscriber(client, price_id, clock.id, i), "clock subscriptions"
        )
        _say(f"{subs:,} subscriptions on the clock in {fill:.1f} s; advancing one month")
        target = T0 + 31 * DAY + 2 * 3600  # past the renewals and their finalization hour
        cpu0 = srv.cpu_seconds()
        t0 = time.perf_counter()
        await client.v1.test_helpers.test_clocks.advance_async(
            clock.id, params={"frozen_time": target}
        )
        while True:
            current = await client.v1.test_helpers.test_clocks.retrieve_async(clock.id)
            if current.status != "advancing":
                break
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - t0
        cpu = srv.cpu_seconds() - cpu0
        if current.status != "ready":
            raise RuntimeError(f"the clock ended {current.status}:\n{srv.log()}")
        paid = await client.v1.invoices.list_async(params={"status": "paid", "limit": 100})
        cycle = [i for i in paid.data if i.billing_reason == "subscription_cycle"]
        if not cycle:
            raise RuntimeError("no renewal invoice was paid")
        return {"subs": subs, "elapsed": elapsed, "server_cpu": cpu, "fill": fill}
    finally:
        await sdk.close()
        srv.stop()


async def memory(subs: int) -> dict[str, float]:
    srv = ServerProcess(EMULATOR)
    srv.start()
    sdk = make_client(srv.url, "aiohttp")
    try:
        client = sdk.stripe
        price_id = await _price(client)
        empty = srv.memory_kib()["VmRSS"]
        elapsed = await _fan_out(
            subs, lambda i: _subscriber(client, price_id, None, i), "subscriptions"
        )
        mem = srv.memory_kib()
        return {"subs": subs, "rss_kib": mem["VmRSS"], "hwm_kib": mem["VmHWM"],
                "elapsed": elapsed, "empty_kib": empty}  # fmt: skip
    finally:
        await sdk.close()
        srv.stop()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.emulator_billing", description=__doc__)
    ap.add_argument("--clock-subs", type=int, default=1000, help="subscriptions on the clock")
    ap.add_argument("--memory-subs", type=int, default=100_000,
                    help="subscriptions for the memory figure (0 skips it)")  # fmt: skip
    return ap.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"payplane bench: Stripe emulator Billing (load average {load} at start; "
          f"{os.cpu_count()} CPUs)", flush=True)  # fmt: skip
    clock = await clock_advance(args.clock_subs)
    verdict = (
        "ok" if clock["elapsed"] <= CLOCK_TARGET_S * max(args.clock_subs, 1000) / 1000 else ("SLOW")
    )
    print(
        f"test clock: {int(clock['subs']):,} monthly subscriptions advanced one month in "
        f"{clock['elapsed']:.2f} s ({clock['subs'] / clock['elapsed']:,.0f} renewals/s, "
        f"server CPU {clock['server_cpu']:.2f} s; target <= {CLOCK_TARGET_S:g} s per 1,000): "
        f"{verdict}",
        flush=True,
    )
    if args.memory_subs:
        mem = await memory(args.memory_subs)
        rss_mib = mem["rss_kib"] / 1024
        verdict = "ok" if mem["rss_kib"] < RSS_TARGET_KIB else "OVER"
        print(
            f"memory: {int(mem['subs']):,} paid subscriptions created in {mem['elapsed']:.0f} s "
            f"({mem['subs'] / mem['elapsed']:,.0f}/s); VmRSS {rss_mib:,.0f} MiB, peak "
            f"{mem['hwm_kib'] / 1024:,.0f} MiB (target < 1,024 MiB): {verdict}; "
            f"{(mem['rss_kib'] - mem['empty_kib']) * 1024 / mem['subs']:,.0f} bytes per "
            f"subscription over the empty emulator's {mem['empty_kib'] / 1024:,.0f} MiB",
            flush=True,
        )
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"(load average {load} at the end)", flush=True)
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
