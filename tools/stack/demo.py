"""`python -m stack.demo` (`make demo`): a realistic batch through the RUNNING local stack.

Payments in usd, eur, gbp and jpy on domestic and international test cards, two declines,
full and partial refunds, each call with its own idempotency key; then it waits until the
ledger has booked every one and sets the ledger's balances beside Stripe's (the emulator's
`GET /v1/balance`), saying whether they agree. Exit status 0 when they do, 1 when not.

It finds the stack through `<run dir>/stack.json` (PAYPLANE_RUN_DIR, default .run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from payplane.checkout.v1 import checkout_pb2, checkout_pb2_grpc
from payplane.common.v1 import common_pb2
from payplane.grpckit import channel, idempotency_metadata
from payplane.ledger.v1 import ledger_pb2, ledger_pb2_grpc

from .webhooks import stripe_client

__all__ = ["PLAN", "REFUNDS", "main"]


@dataclass(frozen=True)
class Charge:
    label: str
    amount: int  # minor units
    currency: str
    payment_method: str


PLAN: tuple[Charge, ...] = (
    Charge("US visa", 2_500, "usd", "pm_card_visa"),
    Charge("US mastercard", 4_999, "usd", "pm_card_mastercard"),
    Charge("US amex", 12_000, "usd", "pm_card_amex"),
    Charge("DE visa", 1_800, "eur", "pm_card_de"),
    Charge("FR visa", 6_420, "eur", "pm_card_fr"),
    Charge("US mastercard", 3_250, "eur", "pm_card_mastercard"),
    Charge("GB visa", 2_000, "gbp", "pm_card_gb"),
    Charge("GB mastercard", 7_550, "gbp", "pm_card_gb_mastercard"),
    Charge("JP visa", 3_000, "jpy", "pm_card_jp"),
    Charge("JP jcb", 12_800, "jpy", "pm_card_jcb"),
    Charge("declined", 1_500, "usd", "pm_card_chargeDeclined"),
    Charge("insufficient funds", 9_900, "eur", "pm_card_chargeDeclinedInsufficientFunds"),
)
# (index into PLAN, amount to refund; 0 = all that remains)
REFUNDS: tuple[tuple[int, int], ...] = ((1, 0), (2, 1_000), (4, 420), (7, 0), (9, 2_800))
CURRENCIES = ("usd", "eur", "gbp", "jpy")
ACCOUNTS = ("revenue", "refunds", "stripe_fees", "stripe_pending")
_ZERO_DECIMAL = {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx",
                 "vnd", "vuv", "xaf", "xof", "xpf"}  # fmt: skip

EXPLANATION = """\
How the two sides compare: the ledger books each payment from Stripe's balance transaction,
in the currency Stripe settles it in: net into stripe_pending, the fee into stripe_fees, the
gross out of revenue; a refund moves its amount out of stripe_pending into refunds. The ledger
does not book settlement (pending -> available) or payouts yet, so its stripe_pending is all
the money Stripe holds for the platform and must equal Stripe's pending + available (+ any
payouts already sent). Each currency must also balance: revenue + refunds + stripe_fees +
stripe_pending = 0. Totals are cumulative over the stack's life (both sides keep state in the
run directory), not just this batch."""


def money(amount: int, currency: str) -> str:
    if currency in _ZERO_DECIMAL:
        return f"{amount:,} {currency}"
    return f"{amount / 100:,.2f} {currency}"


def load_stack(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "stack.json"
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise SystemExit(  # noqa: B904 (the message says it all)
            f"demo: no stack runs from {run_dir} ({path} is missing): `make run` first"
        )
    return state


class Demo:
    def __init__(self, stack: dict[str, Any], out: Any = sys.stdout) -> None:
        self.stack = stack
        self.out = out
        callers = stack["callers"]
        self.checkout_token = callers.get("storefront") or next(iter(callers.values()))
        self.ledger_token = callers.get("finance") or callers.get("admin") or self.checkout_token
        self.run_id = f"{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:6]}"

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    async def run(self, timeout_s: float) -> bool:
        services = self.stack["services"]
        checkout_ch = channel(services["checkout"]["grpc"], self.checkout_token, tracing=False)
        ledger_ch = channel(services["ledger"]["grpc"], self.ledger_token, tracing=False)
        try:
            # The generated stubs' constructors carry no annotations.
            checkout = checkout_pb2_grpc.CheckoutServiceStub(checkout_ch)  # type: ignore[no-untyped-call]
            ledger = ledger_pb2_grpc.LedgerServiceStub(ledger_ch)  # type: ignore[no-untyped-call]
            payments = await self.pay(checkout)
            refunds = await self.refund(checkout, payments)
            await self.wait_booked(ledger, payments, refunds, timeout_s)
            return await self.compare(ledger)
        finally:
            await checkout_ch.close(grace=None)
            await ledger_ch.close(grace=None)

    async def pay(self, checkout: checkout_pb2_grpc.CheckoutServiceStub) -> list[Any]:
        self.say(f"demo batch {self.run_id}: {len(PLAN)} payments, {len(REFUNDS)} refunds")
        limit = asyncio.Semaphore(4)

        async def one(i: int, c: Charge) -> checkout_pb2.Payment:
            request = checkout_pb2.CreatePaymentRequest(
                amount=common_pb2.Money(amount_minor=c.amount, currency=c.currency),
                customer_ref=f"demo-customer-{i % 5}",
                payment_method=c.payment_method,
                description=f"demo {c.label}",
                metadata={"demo_batch": self.run_id},
            )
            async with limit:
                payment: checkout_pb2.Payment = await checkout.CreatePayment(
                    request,
                    metadata=idempotency_metadata(f"demo-{self.run_id}-pay-{i}"),
                    timeout=30,
                )
            return payment

        payments = await asyncio.gather(*(one(i, c) for i, c in enumerate(PLAN)))
        for c, p in zip(PLAN, payments, strict=True):
            status = checkout_pb2.PaymentStatus.Name(p.status).removeprefix("PAYMENT_STATUS_")
            if p.decline.code:
                status += f" ({p.decline.decline_code or p.decline.code})"
            self.say(
                f"  {p.id:<32} {money(c.amount, c.currency):>14}  {c.payment_method:<42} {status}"
            )
        return payments

    async def refund(
        self, checkout: checkout_pb2_grpc.CheckoutServiceStub, payments: list[Any]
    ) -> dict[str, int]:
        """Refund count per payment id."""
        counts: dict[str, int] = defaultdict(int)
        for n, (i, amount) in enumerate(REFUNDS):
            payment = payments[i]
            if payment.status != checkout_pb2.PAYMENT_STATUS_SUCCEEDED:
                self.say(f"  skip refund of {payment.id}: not succeeded")
                continue
            refund = await checkout.RefundPayment(
                checkout_pb2.RefundPaymentRequest(
                    payment_id=payment.id, amount_minor=amount, reason="requested_by_customer"
                ),
                metadata=idempotency_metadata(f"demo-{self.run_id}-refund-{n}"),
                timeout=30,
            )
            kind = "partial" if amount else "full"
            self.say(
                f"  {refund.id:<32} {money(refund.amount.amount_minor, refund.amount.currency):>14}"
                f"  {kind} refund of {payment.id} ({refund.status})"
            )
            counts[payment.id] += 1
        return counts

    async def wait_booked(
        self,
        ledger: ledger_pb2_grpc.LedgerServiceStub,
        payments: list[Any],
        refunds: dict[str, int],
        timeout_s: float,
    ) -> None:
        expected = {
            p.id: 1 + refunds.get(p.id, 0)
            for p in payments
            if p.status == checkout_pb2.PAYMENT_STATUS_SUCCEEDED
        }
        self.say(f"waiting for the ledger to book {sum(expected.values())} entries ...")
        deadline = time.monotonic() + timeout_s
        missing = dict(expected)
        while missing:
            for payment_id, want in list(missing.items()):
                reply = await ledger.ListEntries(
                    ledger_pb2.ListEntriesRequest(
                        source_id=payment_id, page=common_pb2.PageRequest(page_size=50)
                    ),
                    timeout=10,
                )
                if len(reply.entries) >= want:
                    del missing[payment_id]
            if not missing:
                break
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"demo: the ledger has not booked {sorted(missing)} within {timeout_s:.0f}s "
                    "(see .run/logs/checkout.log and ledger.log)"
                )
            await asyncio.sleep(0.25)
        self.say("all booked")

    async def compare(self, ledger: ledger_pb2_grpc.LedgerServiceStub) -> bool:
        stripe_side = await asyncio.to_thread(self.stripe_balance)
        currencies = sorted(set(CURRENCIES) | set(stripe_side))
        books: dict[str, dict[str, int]] = {}
        for cur in currencies:
            row: dict[str, int] = {}
            entries = 0
            for account in ACCOUNTS:
                reply = await ledger.GetBalance(
                    ledger_pb2.GetBalanceRequest(account=account, currency=cur), timeout=10
                )
                row[account] = reply.balance.amount_minor
                entries += reply.entry_count
            if entries or cur in stripe_side:
                books[cur] = row
        self.say()
        self.say("ledger (debit +, credit -)                      | Stripe balance")
        header = (
            f"{'cur':<4} {'revenue':>12} {'refunds':>11} {'stripe_fees':>11} "
            f"{'stripe_pending':>14} | {'pending':>11} {'available':>11} {'paid out':>9}  agree"
        )
        self.say(header)
        all_agree = True
        for cur in sorted(set(books) | set(stripe_side)):
            row = books.get(cur, dict.fromkeys(ACCOUNTS, 0))
            pending, available, paid_out = stripe_side.get(cur, (0, 0, 0))
            held = pending + available + paid_out
            balanced = sum(row.values()) == 0
            agree = row["stripe_pending"] == held and balanced
            all_agree &= agree
            verdict = "yes" if agree else (
                f"NO: ledger {row['stripe_pending']} vs Stripe {held}"
                + ("" if balanced else "; books do not balance")
            )  # fmt: skip
            self.say(
                f"{cur:<4} {row['revenue']:>12} {row['refunds']:>11} {row['stripe_fees']:>11} "
                f"{row['stripe_pending']:>14} | {pending:>11} {available:>11} {paid_out:>9}  "
                f"{verdict}"
            )
        self.say("(amounts in minor units)")
        self.say()
        self.say(EXPLANATION)
        self.say()
        charged = ", ".join(sorted({c.currency for c in PLAN}))
        settled = ", ".join(sorted(books)) or "-"
        self.say(f"charged in {charged}; Stripe settled into {settled}.")
        self.say(
            "RESULT: the ledger agrees with Stripe."
            if all_agree
            else "RESULT: the ledger and Stripe DISAGREE (see above)."
        )
        return all_agree

    def stripe_balance(self) -> dict[str, tuple[int, int, int]]:
        """currency -> (pending, available, paid out) at the emulator."""
        stripe = self.stack["stripe"]
        client = stripe_client(stripe["url"], stripe["api_key"])
        balance = client.v1.balance.retrieve()
        sides: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for item in balance.pending:
            sides[item.currency][0] += item.amount
        for funds in balance.available:
            sides[funds.currency][1] += funds.amount
        for payout in client.v1.payouts.list(params={"limit": 100}).auto_paging_iter():
            if payout.status not in ("failed", "canceled"):
                sides[payout.currency][2] += payout.amount
        return {cur: (v[0], v[1], v[2]) for cur, v in sides.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.demo", description=__doc__)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for booking")
    args = parser.parse_args(argv)
    run_dir = Path(os.environ.get("PAYPLANE_RUN_DIR") or ".run").resolve()
    demo = Demo(load_stack(run_dir))
    try:
        agree = asyncio.run(demo.run(args.timeout))
    except grpc.aio.AioRpcError as exc:
        print(f"demo: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 2
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
