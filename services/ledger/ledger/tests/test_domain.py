from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.domain.accounts import ACCOUNTS
from ledger.domain.entries import (
    InvalidPosting,
    JournalEntry,
    Posting,
    UnbalancedEntry,
    UnknownAccount,
)
from ledger.domain.rules import (
    BalanceTransaction,
    Settlement,
    from_balance_transaction,
    payment_refund_failed,
    payment_refunded,
    payment_succeeded,
)


def _sum(entries: list[JournalEntry]) -> dict[tuple[str, str], int]:
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for e in entries:
        for p in e.postings:
            totals[(p.account, p.currency)] += p.amount
    return dict(totals)


def test_payment_books_net_fee_and_gross() -> None:
    s = Settlement("txn_1", "usd", gross=10_000, fee=320, net=9_680)
    entry = payment_succeeded("evt_1", "pay_1", s, {"charge": "ch_1"})
    totals = _sum([entry])
    assert totals == {
        ("stripe_pending", "usd"): 9_680,
        ("stripe_fees", "usd"): 320,
        ("revenue", "usd"): -10_000,
    }
    assert entry.refs == {"charge": "ch_1", "balance_transaction": "txn_1"}


def test_refund_reverses_the_money_not_the_fee() -> None:
    paid = payment_succeeded("evt_1", "pay_1", Settlement("txn_1", "usd", 10_000, 320, 9_680), {})
    refund = payment_refunded(
        "evt_2", "pay_1", "ref_1", Settlement("txn_2", "usd", -4_000, 0, -4_000), {}
    )
    totals = _sum([paid, refund])
    assert totals[("stripe_pending", "usd")] == 5_680
    assert totals[("refunds", "usd")] == 4_000
    assert totals[("revenue", "usd")] == -10_000


def test_a_failed_refund_reverses_the_refund_with_the_funds_stripe_returned() -> None:
    paid = payment_succeeded("evt_1", "pay_1", Settlement("txn_1", "usd", 10_000, 320, 9_680), {})
    refund = payment_refunded(
        "evt_2", "pay_1", "ref_1", Settlement("txn_2", "usd", -4_000, 0, -4_000), {}
    )
    failed = payment_refund_failed(
        "evt_3", "pay_1", "ref_1", Settlement("txn_3", "usd", 4_000, 0, 4_000), {}
    )
    assert failed.source_type == "checkout.payment.refund_failed"
    assert failed.link is not None and (failed.link.role, failed.link.gross) == ("booking", 4_000)
    assert failed.refs == {"balance_transaction": "txn_3", "refund": "ref_1"}
    assert _sum([paid, refund, failed]) == _sum([paid]) | {
        ("refunds", "usd"): 0
    }  # fmt: skip


def test_a_failed_converted_refund_returns_refunds_and_fx_to_where_the_refund_took_them() -> None:
    charge_rate = Decimal("1.086957")  # eur -> usd when the charge was made
    paid = payment_succeeded(
        "evt_1", "pay_1", Settlement("txn_1", "usd", 5_435, 323, 5_112, charge_rate), {}
    )
    later = Decimal("1.25")  # the refund (and its failure) at that day's rate
    refund = payment_refunded(
        "evt_2", "pay_1", "ref_1", Settlement("txn_2", "usd", -2_500, 0, -2_500, later), {},
        presentment=(2_000, "eur"), charge_rate=charge_rate,
    )  # fmt: skip
    assert _sum([refund])[("refunds", "usd")] == 2_174  # 2,000 eur at the charge's rate
    assert _sum([refund])[("fx_gain_loss", "usd")] == 326
    failed = payment_refund_failed(
        "evt_3", "pay_1", "ref_1", Settlement("txn_3", "usd", 2_500, 0, 2_500, later), {},
        presentment=(2_000, "eur"), charge_rate=charge_rate,
    )  # fmt: skip
    totals = _sum([paid, refund, failed])
    assert totals[("refunds", "usd")] == 0 and totals[("fx_gain_loss", "usd")] == 0
    assert totals[("stripe_pending", "usd")] == 5_112


def test_a_refund_failure_stripe_alone_reports_is_booked_back_to_refunds() -> None:
    bt = BalanceTransaction(
        "txn_9", "refund_failure", "refund_failure", "re_1", "usd", 4_000, 0, 4_000, "available"
    )
    entry = from_balance_transaction(bt, "heal:missing_in_ledger:txn_9", "reconciliation.healed")
    assert entry is not None
    assert _sum([entry]) == {("stripe_pending", "usd"): 4_000, ("refunds", "usd"): -4_000}


def test_unbalanced_and_invalid_entries_are_refused() -> None:
    with pytest.raises(UnbalancedEntry):
        JournalEntry("e", "t", "s", "d", (Posting("bank", 5, "usd"), Posting("revenue", -4, "usd")))
    with pytest.raises(UnbalancedEntry):  # balanced in total but not per currency
        JournalEntry("e", "t", "s", "d", (Posting("bank", 5, "usd"), Posting("revenue", -5, "eur")))
    with pytest.raises(UnknownAccount):
        Posting("petty_cash", 5, "usd")
    with pytest.raises(InvalidPosting):
        Posting("bank", 0, "usd")
    with pytest.raises(InvalidPosting):
        Posting("bank", 5, "USD")


_accounts = st.sampled_from(sorted(ACCOUNTS))
_currency = st.sampled_from(["usd", "eur", "jpy"])


@st.composite
def _entries(draw: st.DrawFn) -> JournalEntry:
    currency = draw(_currency)
    legs = draw(st.lists(st.tuples(_accounts, st.integers(1, 10**9)), min_size=1, max_size=4))
    postings = [Posting(a, amount, currency) for a, amount in legs]
    total = sum(amount for _, amount in legs)
    postings.append(Posting(draw(_accounts), -total, currency))
    return JournalEntry(draw(st.uuids()).hex, "test", "src", "generated", tuple(postings))


@given(st.lists(_entries(), max_size=20))
def test_any_valid_postings_keep_every_currency_balanced(entries: list[JournalEntry]) -> None:
    per_currency: dict[str, int] = defaultdict(int)
    for (_, currency), amount in _sum(entries).items():
        per_currency[currency] += amount
    assert all(v == 0 for v in per_currency.values())


@given(st.lists(_entries(), min_size=1, max_size=10))
def test_reversals_restore_balances(entries: list[JournalEntry]) -> None:
    reversals = [e.reversed(f"rev-{e.source_event_id}", "undo") for e in entries]
    assert all(v == 0 for v in _sum(entries + reversals).values())
