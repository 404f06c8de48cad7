"""The ledger against Stripe: a clean scenario reconciles to zero and ties out; a re-run
changes nothing; the chain verifies; statements and point-in-time balances agree."""

from __future__ import annotations

from payplane.ledger.v1 import ledger_pb2

from .harness import Platform
from .ledger_scenario import (
    discrepancies,
    reconcile,
    run_scenario,
    scenario_bookings,
    wait_booked,
)


async def test_a_clean_scenario_reconciles_to_zero_and_ties_out(platform_on: Platform) -> None:
    p = platform_on
    sc = await run_scenario(p)
    await wait_booked(p, scenario_bookings(sc))
    statuses = sorted(po["status"] for po in sc.payouts)
    assert statuses == ["failed", "paid"], statuses

    run = await reconcile(p)
    found = await discrepancies(p)
    assert found == [], [(d.kind, d.subject, dict(d.evidence)) for d in found]
    assert run.discrepancies_found == 0 and not run.kinds
    assert run.balance_transactions_imported > 0 and run.payouts_imported == 2
    assert run.balance_transactions_matched == run.balance_transactions_imported
    assert [t.currency for t in run.tie_out] == ["usd"]
    tie = run.tie_out[0]
    assert tie.ties_out, tie
    assert tie.closing == tie.opening + tie.activity == tie.stripe_balance
    assert (tie.ledger_pending, tie.ledger_available) == (tie.stripe_pending, tie.stripe_available)

    # The books: money left for the bank once (the failed payout came back), fees and
    # disputes as Stripe charged them, every currency converted into usd.
    stripe = p.stripe
    bts = stripe.v1.balance_transactions.list(params={"limit": 100}).data
    paid = next(po for po in sc.payouts if po["status"] == "paid")
    assert await p.balance("bank") == paid["amount"]
    assert await p.balance("payouts_in_transit") == 0
    assert await p.balance("stripe_fees") == sum(
        bt.fee for bt in bts if bt.type in ("charge", "refund")
    )
    dispute_bts = [bt for bt in bts if bt.type == "adjustment"]
    assert len(dispute_bts) == 3  # two withdrawals, one reinstatement
    assert await p.balance("dispute_fees") == sum(bt.fee for bt in dispute_bts) == 1500
    assert await p.balance("dispute_losses") == -sum(bt.amount for bt in dispute_bts) > 0
    # The converted refunds settled at the later rate: the difference is an FX result.
    assert await p.balance("fx_gain_loss") != 0

    # Re-running is idempotent: nothing found, no entry added.
    stub = p.ledger("admin")
    before = await stub.ListEntries(ledger_pb2.ListEntriesRequest(page={"page_size": 1}))
    again = await reconcile(p)
    after = await stub.ListEntries(ledger_pb2.ListEntriesRequest(page={"page_size": 1}))
    assert again.discrepancies_found == 0 and again.tie_out[0].ties_out
    assert after.entries[0].seq == before.entries[0].seq
    assert again.tie_out[0].opening == tie.closing and again.tie_out[0].activity == 0

    # The chain verifies.
    assert await p.ledger_app.ledger.verify() == []


async def test_statements_and_balances_at_a_point_in_time(platform_on: Platform) -> None:
    p = platform_on
    first = await p.pay("st-1", amount=1_000)
    await wait_booked(p, [first.id])
    stub = p.ledger("admin")
    head = (await stub.ListEntries(ledger_pb2.ListEntriesRequest(page={"page_size": 1}))).entries[0]
    second = await p.pay("st-2", amount=2_500)
    await wait_booked(p, [second.id])
    now_revenue = await p.balance("revenue")
    at_head = await stub.GetBalance(
        ledger_pb2.GetBalanceRequest(account="revenue", currency="usd", as_of_seq=head.seq)
    )
    assert at_head.balance.amount_minor == -1_000 and now_revenue == -3_500
    at_time = await stub.GetBalance(
        ledger_pb2.GetBalanceRequest(account="revenue", currency="usd", as_of=head.created_at)
    )
    assert at_time.balance.amount_minor == -1_000
    statement = await stub.GetAccountStatement(
        ledger_pb2.GetAccountStatementRequest(
            account="revenue", currency="usd", page={"page_size": 1}
        )
    )
    assert statement.opening_balance.amount_minor == 0
    assert statement.closing_balance.amount_minor == -3_500
    assert statement.credits.amount_minor == -3_500 and statement.debits.amount_minor == 0
    assert [line.running_balance.amount_minor for line in statement.lines] == [-1_000]
    rest = await stub.GetAccountStatement(
        ledger_pb2.GetAccountStatementRequest(
            account="revenue",
            currency="usd",
            page={"page_size": 10, "page_token": statement.page.next_page_token},
        )
    )
    assert [line.running_balance.amount_minor for line in rest.lines] == [-3_500]
    assert rest.lines[0].source_id == second.id
