"""The money-movement scenario the ledger's reconciliation tests share, and their helpers.

Charges in several currencies (converted to the account's usd), international cards, partial
refunds after the exchange rates moved, a won and a lost dispute, automatic payouts with the
first one failing at the bank and the next one paid.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from payplane.checkout.v1 import checkout_pb2
from payplane.grpckit import idempotency_metadata, new_idempotency_key
from payplane.ledger.v1 import ledger_pb2

from .harness import Platform

DAY = 86_400
FAILING_BANK = "000111111116"  # no_account
GOOD_BANK = "000123456789"
START_RATES = {"usd": 1.0, "eur": 0.92, "gbp": 0.79, "jpy": 150.0}
STANDARD_PRICING = {
    "percent_bp": 290, "fixed": 30, "international_bp": 150, "fx_bp": 100, "dispute_fee": 1500,
}  # fmt: skip


@dataclass
class Scenario:
    payments: dict[str, checkout_pb2.Payment] = field(default_factory=dict)
    disputes: dict[str, str] = field(default_factory=dict)  # outcome -> dispute id
    payouts: list[dict[str, Any]] = field(default_factory=list)


async def pay(p: Platform, key: str, amount: int, currency: str, pm: str) -> checkout_pb2.Payment:
    payment = await p.pay(key, amount=amount, currency=currency, pm=pm, customer_ref=f"c-{key}")
    assert payment.status == checkout_pb2.PAYMENT_STATUS_SUCCEEDED, (key, payment.status)
    return payment


async def refund(p: Platform, payment_id: str, amount: int) -> checkout_pb2.Refund:
    result: checkout_pb2.Refund = await p.checkout().RefundPayment(
        checkout_pb2.RefundPaymentRequest(
            payment_id=payment_id, amount_minor=amount, reason="requested_by_customer"
        ),
        metadata=idempotency_metadata(new_idempotency_key()),
        timeout=30,
    )
    return result


def advance_to_midnight(p: Platform, days: int) -> None:
    """Move the emulator's clock to midnight UTC `days` days from now (timers run)."""
    now = p.emulator.control.now()
    target = (now // DAY + days) * DAY
    p.emulator.control.advance(seconds=target - now)


async def wait_booked(
    p: Platform, source_ids: list[str] | dict[str, int], timeout_s: float = 20.0
) -> None:
    """Bounded wait until the ledger holds entries for each source id (at least the count
    given, else one): events arrive asynchronously."""
    want = source_ids if isinstance(source_ids, dict) else dict.fromkeys(source_ids, 1)
    deadline = time.monotonic() + timeout_s
    pending = dict(want)
    stub = p.ledger()
    while pending:
        for sid, count in list(pending.items()):
            reply = await stub.ListEntries(ledger_pb2.ListEntriesRequest(source_id=sid), timeout=10)
            if len(reply.entries) >= count:
                del pending[sid]
        if pending and time.monotonic() > deadline:
            raise AssertionError(f"never booked: {pending}")
        if pending:
            await asyncio.sleep(0.1)


def scenario_bookings(sc: Scenario) -> dict[str, int]:
    """What checkout's events book: each payment (refunds share its source id), and each
    dispute's withdrawal (plus the reinstatement of the won one)."""
    want = {pay.id: 1 for pay in sc.payments.values()}
    for refunded in ("eur", "gbp-intl", "usd-domestic"):
        want[sc.payments[refunded].id] = 2
    want[sc.disputes["won"]] = 2
    want[sc.disputes["lost"]] = 1
    return want


async def run_scenario(p: Platform) -> Scenario:
    sc = Scenario()
    ctl = p.emulator.control
    # The emulator is shared by the session and a reset keeps its configuration: start from
    # the standard rates and pricing whatever an earlier test left.
    ctl.configure(fx_rates=START_RATES, pricing=STANDARD_PRICING)
    ctl.call("POST", "/_emulator/platform/bank_account", {"account_number": FAILING_BANK})
    for key, amount, currency, pm in (
        ("usd-domestic", 10_000, "usd", "pm_card_visa"),
        ("usd-intl", 7_500, "usd", "pm_card_gb"),
        ("eur", 5_000, "eur", "pm_card_visa"),
        ("gbp-intl", 3_000, "gbp", "pm_card_gb"),
        ("jpy-intl", 2_000, "jpy", "pm_card_jp"),
        ("dispute-won", 4_000, "usd", "pm_card_createDispute"),
        ("dispute-lost", 6_000, "eur", "pm_card_createDispute"),
    ):
        sc.payments[key] = await pay(p, f"sc-{key}", amount, currency, pm)
    # The rates move before the refunds: converted refunds settle at the new rate.
    ctl.configure(fx_rates={"eur": 0.80, "gbp": 0.70})
    await refund(p, sc.payments["eur"].id, 2_000)
    await refund(p, sc.payments["gbp-intl"].id, 1_000)
    await refund(p, sc.payments["usd-domestic"].id, 3_000)
    for outcome in ("won", "lost"):
        charge = sc.payments[f"dispute-{outcome}"].stripe_charge_id
        found = p.stripe.v1.disputes.list(params={"charge": charge}).data
        assert len(found) == 1, charge
        sc.disputes[outcome] = str(found[0].id)
        ctl.call("POST", f"/_emulator/disputes/{found[0].id}/close", {"outcome": outcome})
    # Charges become available two midnights later and are swept into a payout at 00:00:01;
    # it fails at its arrival (two midnights later again), the failure returns the funds,
    # and the next day's payout, to a good bank account, is paid.
    advance_to_midnight(p, 4)
    ctl.call("POST", "/_emulator/platform/bank_account", {"account_number": GOOD_BANK})
    advance_to_midnight(p, 4)
    sc.payouts = [po.to_dict() for po in p.stripe.v1.payouts.list(params={"limit": 100}).data]
    return sc


async def reconcile(
    p: Platform, timeout_s: float = 60.0, **request: Any
) -> ledger_pb2.ReconciliationRun:
    stub = p.ledger("admin")
    started = await stub.RunReconciliation(
        ledger_pb2.RunReconciliationRequest(**request),
        metadata=idempotency_metadata(new_idempotency_key()),
        timeout=10,
    )
    deadline = time.monotonic() + timeout_s
    while True:
        run: ledger_pb2.ReconciliationRun = await stub.GetReconciliationRun(
            ledger_pb2.GetReconciliationRunRequest(run_id=started.run_id), timeout=10
        )
        if run.status != "running":
            assert run.status == "completed", run.error
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {started.run_id} still running")
        await asyncio.sleep(0.1)


async def discrepancies(p: Platform, **filters: str) -> list[ledger_pb2.Discrepancy]:
    stub = p.ledger("admin")
    out: list[ledger_pb2.Discrepancy] = []
    token = ""
    while True:
        page = await stub.ListDiscrepancies(
            ledger_pb2.ListDiscrepanciesRequest(
                page={"page_size": 100, "page_token": token}, **filters
            ),
            timeout=10,
        )
        out.extend(page.discrepancies)
        token = page.page.next_page_token
        if not token:
            return out
