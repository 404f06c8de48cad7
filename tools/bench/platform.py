"""CreatePayment over gRPC through the whole local stack (separate processes, as `make run`).

    python -m bench.platform [--payments 400] [--direct 200]

Prints: CreatePayment throughput with 1, 16 and 64 calls in flight; the latency payplane adds
(CreatePayment minus the emulator's own time for the same Stripe call, measured interleaved in
one run); and the time from a payment's commit to its ledger posting. The emulator's rate
limit is off (the stack starts it so). Loopback only; every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import stripe

from payplane.checkout.v1 import checkout_pb2, checkout_pb2_grpc
from payplane.common.v1 import common_pb2
from payplane.grpckit import channel, idempotency_metadata
from payplane.ledger.v1 import ledger_pb2, ledger_pb2_grpc
from stack.launch import launched_stack

from .report import percentile

__all__ = ["main"]


def _request(run: str, i: int) -> checkout_pb2.CreatePaymentRequest:
    return checkout_pb2.CreatePaymentRequest(
        amount=common_pb2.Money(amount_minor=1_000 + i % 500, currency="usd"),
        customer_ref=f"{run}-customer-{i}",
        payment_method="pm_card_visa",
    )


def bench_fraud_model(directory: Path) -> Path:
    """The shipped model, blind to card velocity: every bench payment uses Stripe's one visa
    test card, which a real model rightly finds suspicious after a few hundred payments.
    Features are still computed for every payment; only their weights change."""
    from checkout.fraud import model as fraud_model

    shipped = json.loads((Path(fraud_model.__file__).parent / "default_model.json").read_text())
    for name in list(shipped["weights"]):
        if name.startswith("velocity_card") or name == "distinct_customers_per_card":
            shipped["weights"][name] = 0.0
    shipped["version"] += "+bench"
    path = directory / "bench_fraud_model.json"
    path.write_text(json.dumps(shipped))
    return path


async def _create(
    stub: checkout_pb2_grpc.CheckoutServiceStub, run: str, n: int, in_flight: int
) -> tuple[float, list[float], list[checkout_pb2.Payment]]:
    latencies: list[float] = []
    payments: list[checkout_pb2.Payment] = []
    queue = iter(range(n))

    async def worker() -> None:
        for i in queue:
            t0 = time.perf_counter()
            p = await stub.CreatePayment(
                _request(run, i), metadata=idempotency_metadata(f"{run}-{i}"), timeout=60
            )
            latencies.append(time.perf_counter() - t0)
            payments.append(p)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return time.perf_counter() - t0, latencies, payments


def _stripe_params(i: int) -> dict[str, Any]:
    """What checkout sends Stripe for one payment (see checkout.adapters.stripe_payments)."""
    return {
        "amount": 1_000 + i % 500,
        "currency": "usd",
        "payment_method": "pm_card_visa",
        "confirm": True,
        "capture_method": "automatic",
        "metadata": {"payplane_payment_id": f"pay_direct_{i}", "payplane_customer_ref": "b"},
        "payment_method_types": ["card"],
        "expand": ["latest_charge.balance_transaction"],
    }


async def _added_latency(
    stub: checkout_pb2_grpc.CheckoutServiceStub, client: stripe.StripeClient, n: int
) -> tuple[list[float], list[float]]:
    """Interleave CreatePayment and the bare Stripe call, one at a time, in one run."""
    ours: list[float] = []
    direct: list[float] = []
    for i in range(n):
        t0 = time.perf_counter()
        await client.v1.payment_intents.create_async(params=_stripe_params(i))  # type: ignore[arg-type]
        direct.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        await stub.CreatePayment(
            _request("added", i), metadata=idempotency_metadata(f"added-{i}"), timeout=60
        )
        ours.append(time.perf_counter() - t0)
    return ours, direct


async def _posting_delays(
    ledger: ledger_pb2_grpc.LedgerServiceStub,
    payments: Sequence[checkout_pb2.Payment],
    timeout_s: float = 120.0,
) -> list[float]:
    """Commit (payment.updated_at) to posting (entry.created_at), per payment."""
    delays: dict[str, float] = {}
    deadline = time.monotonic() + timeout_s
    pending = {p.id: p for p in payments}
    while pending and time.monotonic() < deadline:
        for pid, p in list(pending.items()):
            reply = await ledger.ListEntries(ledger_pb2.ListEntriesRequest(source_id=pid))
            if reply.entries:
                posted = reply.entries[0].created_at.ToNanoseconds() / 1e9
                delays[pid] = posted - p.updated_at.ToNanoseconds() / 1e9
                del pending[pid]
        if pending:
            await asyncio.sleep(0.2)
    if pending:
        raise RuntimeError(f"{len(pending)} payments were not booked within {timeout_s}s")
    return list(delays.values())


def _ms(values: Sequence[float], q: float) -> str:
    return f"{percentile([v * 1000 for v in values], q):8.1f}"


async def _run(state: dict[str, Any], payments: int, direct_n: int) -> None:
    token = state["callers"]["storefront"]
    ch = channel(state["services"]["checkout"]["grpc"], token, tracing=False)
    lch = channel(state["services"]["ledger"]["grpc"], state["callers"]["admin"], tracing=False)
    stub = checkout_pb2_grpc.CheckoutServiceStub(ch)  # type: ignore[no-untyped-call]
    ledger = ledger_pb2_grpc.LedgerServiceStub(lch)  # type: ignore[no-untyped-call]
    http = stripe.AIOHTTPClient()  # what the services' gateway uses
    client = stripe.StripeClient(
        state["stripe"]["api_key"], base_addresses={"api": state["stripe"]["url"]}, http_client=http
    )
    try:
        await _create(stub, "warmup", 50, 8)
        print(f"{'CreatePayment over gRPC':32} {'in flight':>9} {'payments/s':>11} "
              f"{'p50 ms':>8} {'p99 ms':>8}")  # fmt: skip
        concurrent_payments: list[checkout_pb2.Payment] = []
        for in_flight in (1, 16, 64):
            n = payments if in_flight > 1 else max(payments // 4, 50)
            elapsed, lat, made = await _create(stub, f"run{in_flight}", n, in_flight)
            failed = [p for p in made if p.status != checkout_pb2.PAYMENT_STATUS_SUCCEEDED]
            if failed:
                raise RuntimeError(f"{len(failed)} bench payments did not succeed: {failed[0]}")
            if in_flight == 16:
                concurrent_payments = made
            print(f"{'':32} {in_flight:9d} {n / elapsed:11.1f} {_ms(lat, 50)} {_ms(lat, 99)}")
        ours, direct = await _added_latency(stub, client, direct_n)
        print()
        print(f"{'sequential, interleaved':32} {'p50 ms':>8} {'p99 ms':>8}")
        print(f"{'  CreatePayment (gRPC)':32} {_ms(ours, 50)} {_ms(ours, 99)}")
        print(f"{'  the same Stripe call alone':32} {_ms(direct, 50)} {_ms(direct, 99)}")
        added_50 = percentile(ours, 50) - percentile(direct, 50)
        added_99 = percentile(ours, 99) - percentile(direct, 99)
        print(f"{'  payplane adds':32} {added_50 * 1000:8.1f} {added_99 * 1000:8.1f}")
        delays = await _posting_delays(ledger, concurrent_payments)
        print()
        print(f"{'commit -> ledger posting':32} {_ms(delays, 50)} {_ms(delays, 99)}"
              f"   ({len(delays)} payments of the 16-in-flight run)")  # fmt: skip
    finally:
        await ch.close(None)
        await lch.close(None)
        await http.close_async()  # type: ignore[no-untyped-call]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="bench.platform", description=__doc__.split("\n\n")[0])
    ap.add_argument("--payments", type=int, default=400, help="payments per concurrent run")
    ap.add_argument("--direct", type=int, default=200, help="interleaved pairs for added latency")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="payplane-bench-") as tmp:
        print("starting the local stack (NATS, emulator, checkout, ledger) on free ports ...")
        model = bench_fraud_model(Path(tmp))
        # Stripe's own limit is off in the emulator; the services' budgets must not cap either.
        extra = {"FRAUD_MODEL_PATH": str(model), "PAYPLANE_STRIPE_MAX_RPS": "100000"}
        with launched_stack(Path(tmp) / "run", extra) as state:
            asyncio.run(_run(state, args.payments, args.direct))


if __name__ == "__main__":
    main()
