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

from ledger.domain.accounts import ACCOUNTS, STRIPE_BALANCE
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
SHOWN = ("revenue", "refunds", "stripe_fees", "stripe_pending", "stripe_available")
_ZERO_DECIMAL = {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx",
                 "vnd", "vuv", "xaf", "xof", "xpf"}  # fmt: skip

EXPLANATION = """\
How the two sides compare: the ledger books each payment from Stripe's balance transaction,
in the currency Stripe settles it in: net into stripe_pending, the fee into stripe_fees, the
gross out of revenue; a refund moves its amount out of Stripe's balance into refunds. What
the books say Stripe holds for the platform, stripe_pending + stripe_available, must equal
Stripe's balance, pending + available, in every currency (the split between the two may lag
while settlement is booked, the sum may not). And every currency must balance: all accounts
sum to 0 ("other" holds the accounts not shown: disputes, FX, payouts, ...). Totals are
cumulative over the stack's life (both sides keep state in the run directory), not only this
batch."""


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
            for account in sorted(ACCOUNTS):
                reply = await ledger.GetBalance(
                    ledger_pb2.GetBalanceRequest(account=account, currency=cur), timeout=10
                )
                row[account] = reply.balance.amount_minor
                entries += reply.entry_count
            if entries or cur in stripe_side:
                books[cur] = row
        self.say()
        self.say(f"{'ledger (debit +, credit -)':<79} | Stripe balance")
        self.say(
            f"{'cur':<4} {'revenue':>10} {'refunds':>9} {'stripe_fees':>11} {'other':>7} "
            f"{'stripe_pending':>14} {'stripe_available':>16} | {'pending':>9} {'available':>9}"
            "  agree"
        )
        all_agree = True
        for cur in sorted(books):
            row = books[cur]
            pending, available = stripe_side.get(cur, (0, 0))
            held = sum(row[a] for a in STRIPE_BALANCE)
            other = sum(v for a, v in row.items() if a not in SHOWN)
            balanced = sum(row.values()) == 0
            agree = held == pending + available and balanced
            all_agree &= agree
            verdict = "yes" if agree else (
                f"NO: ledger {held} vs Stripe {pending + available}"
                + ("" if balanced else "; the books do not balance")
            )  # fmt: skip
            self.say(
                f"{cur:<4} {row['revenue']:>10} {row['refunds']:>9} {row['stripe_fees']:>11} "
                f"{other:>7} {row['stripe_pending']:>14} {row['stripe_available']:>16} | "
                f"{pending:>9} {available:>9}  {verdict}"
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

    def stripe_balance(self) -> dict[str, tuple[int, int]]:
        """currency -> (pending, available) at the emulator (GET /v1/balance)."""
        stripe = self.stack["stripe"]
        balance = stripe_client(stripe["url"], stripe["api_key"]).v1.balance.retrieve()
        sides: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for item in balance.pending:
            sides[item.currency][0] += item.amount
        for funds in balance.available:
            sides[funds.currency][1] += funds.amount
        return {cur: (v[0], v[1]) for cur, v in sides.items()}


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
