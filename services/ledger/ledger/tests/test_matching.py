"""Reconciliation's classification on its own (domain.matching, domain.tie_out): given the
facts, which discrepancy kinds with which evidence, which are certain, what heals them and
what the policy lets heal. No database: the facts are built by hand."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from ledger.domain.discrepancies import HealingPolicy
from ledger.domain.entries import JournalEntry
from ledger.domain.matching import (
    ConvertedAmount,
    Finding,
    LedgerView,
    PayoutFacts,
    PricedCharge,
    UnmatchedBooking,
    approved_correction,
    check_payout,
    check_pricing,
    check_rate,
    check_unmatched_booking,
    classify_transaction,
    reversal_of_unknown,
)
from ledger.domain.pricing import PricingModel
from ledger.domain.rules import BalanceTransaction, Settlement, payment_succeeded
from ledger.domain.tie_out import balance_by_currency, tie_out

POLICY = HealingPolicy()


def bt(
    *,
    id: str = "txn_1",
    type: str = "charge",
    category: str = "",
    amount: int = 10_000,
    fee: int = 320,
    status: str = "pending",
    rate: str | None = None,
) -> BalanceTransaction:
    return BalanceTransaction(
        id=id, type=type, reporting_category=category or type, source="ch_1", currency="usd",
        amount=amount, fee=fee, net=amount - fee, status=status,
        exchange_rate=None if rate is None else Decimal(rate),
    )  # fmt: skip


def kinds(findings: list[Finding]) -> list[str]:
    return [f.kind for f in findings]


def _postings(entry: JournalEntry) -> dict[str, int]:
    return {p.account: p.amount for p in entry.postings}


# -- a balance transaction against the ledger's view of it ----------------------------------------
def test_a_transaction_booked_as_stripe_has_it_is_no_discrepancy() -> None:
    assert classify_transaction(bt(), LedgerView(10_000, 320, 0)) == []
    settled = bt(status="available")
    assert classify_transaction(settled, LedgerView(10_000, 320, settled.net)) == []


def test_available_at_stripe_but_not_yet_settled_in_the_ledger_is_not_a_discrepancy() -> None:
    # The run's settlement step books it; only the reverse is a timing difference.
    assert classify_transaction(bt(status="available"), LedgerView(10_000, 320, 0)) == []


def test_an_unbooked_charge_is_missing_in_the_ledger_certain_and_healed_from_stripe() -> None:
    [f] = classify_transaction(bt(), None)
    assert (f.kind, f.subject, f.currency, f.amount, f.key) == (
        "missing_in_ledger", "txn_1", "usd", 9_680, "missing_in_ledger:txn_1"
    )  # fmt: skip
    assert f.certain and f.healable(POLICY)
    assert f.evidence["stripe_amount"] == 10_000 and f.evidence["stripe_status"] == "pending"
    assert f.fix is not None and f.fix.source_event_id == "heal:missing_in_ledger:txn_1"
    assert _postings(f.fix) == {"stripe_pending": 9_680, "stripe_fees": 320, "revenue": -10_000}
    assert f.fix.link is not None and (f.fix.link.role, f.fix.link.gross, f.fix.link.fee) == (
        "booking", 10_000, 320
    )  # fmt: skip


def test_an_unbooked_transaction_stripe_cannot_place_is_missing_but_waits_for_a_human() -> None:
    [f] = classify_transaction(bt(type="adjustment", category="other_adjustment"), None)
    assert f.kind == "missing_in_ledger" and not f.certain and f.fix is None
    assert not f.healable(HealingPolicy(heal_kinds=frozenset({"missing_in_ledger"})))


def test_an_unbooked_dispute_adjustment_is_its_own_kind_and_books_the_dispute() -> None:
    withdrawn = bt(type="adjustment", category="dispute", amount=-4_000, fee=1_500)
    [f] = classify_transaction(withdrawn, None)
    assert (f.kind, f.amount, f.certain) == ("unbooked_dispute", -5_500, True)
    assert f.fix is not None and _postings(f.fix) == {
        "dispute_losses": 4_000, "dispute_fees": 1_500, "stripe_pending": -5_500
    }  # fmt: skip
    won = bt(type="adjustment", category="dispute_reversal", amount=4_000, fee=-1_500)
    assert kinds(classify_transaction(won, None)) == ["unbooked_dispute"]


def test_a_refund_failure_matches_its_booking_and_heals_back_to_refunds_when_missing() -> None:
    returned = bt(type="refund_failure", amount=4_000, fee=0, status="available")
    assert classify_transaction(returned, LedgerView(4_000, 0, 4_000)) == []
    [missing] = classify_transaction(returned, None)
    assert (missing.kind, missing.certain) == ("missing_in_ledger", True)
    assert missing.healable(POLICY) and missing.fix is not None
    assert _postings(missing.fix) == {"stripe_pending": 4_000, "refunds": -4_000}
    [off] = classify_transaction(returned, LedgerView(3_900, 0, 4_000))
    assert off.kind == "amount_mismatch" and off.fix is not None
    assert _postings(off.fix) == {"stripe_pending": 100, "refunds": -100}  # not revenue


def test_another_fee_booked_is_a_certain_fee_mismatch_against_the_ledger() -> None:
    [f] = classify_transaction(bt(), LedgerView(10_000, 370, 0))
    assert (f.kind, f.amount, f.evidence["against"], f.key) == (
        "fee_mismatch", -50, "ledger", "fee_mismatch:txn_1:ledger:370"
    )  # fmt: skip
    assert f.certain and f.healable(POLICY)
    assert f.fix is not None and _postings(f.fix) == {"stripe_pending": 50, "stripe_fees": -50}


def test_another_unconverted_gross_is_an_amount_mismatch_only_a_human_heals() -> None:
    [f] = classify_transaction(bt(), LedgerView(9_900, 320, 0))
    assert (f.kind, f.amount, f.evidence["ledger_amount"]) == ("amount_mismatch", 100, 9_900)
    assert f.certain and f.fix is not None
    assert _postings(f.fix) == {"stripe_pending": 100, "revenue": -100}
    assert not f.healable(POLICY)  # not among the default heal kinds
    assert f.healable(HealingPolicy(heal_kinds=frozenset({"amount_mismatch"})))
    refund = bt(type="refund", amount=-3_000, fee=0)
    [r] = classify_transaction(refund, LedgerView(-2_900, 0, 0))
    assert r.fix is not None and _postings(r.fix) == {"stripe_pending": -100, "refunds": 100}


def test_another_converted_gross_is_a_certain_fx_mismatch_booked_to_fx_gain_loss() -> None:
    converted = bt(amount=5_435, fee=323, rate="1.086957")
    [f] = classify_transaction(converted, LedgerView(5_442, 323, 0))
    assert (f.kind, f.amount, f.evidence["against"], f.evidence["exchange_rate"]) == (
        "fx_mismatch", -7, "ledger", "1.086957"
    )  # fmt: skip
    assert f.certain and f.healable(POLICY)
    assert f.fix is not None and _postings(f.fix) == {"stripe_pending": -7, "fx_gain_loss": 7}


def test_settled_in_the_ledger_while_stripe_holds_it_pending_is_timing() -> None:
    pending = bt()
    [f] = classify_transaction(pending, LedgerView(10_000, 320, 9_680))
    assert (f.kind, f.amount, f.key) == ("timing", -9_680, "timing:txn_1:9680")
    assert f.evidence["ledger_available"] == 9_680 and f.evidence["stripe_available"] == 0
    assert f.certain and f.healable(POLICY)
    assert f.fix is not None and _postings(f.fix) == {
        "stripe_pending": 9_680, "stripe_available": -9_680
    }  # fmt: skip


def test_one_transaction_can_be_several_discrepancies_each_with_its_own_key() -> None:
    found = classify_transaction(bt(status="pending"), LedgerView(9_000, 300, 100))
    assert kinds(found) == ["amount_mismatch", "fee_mismatch", "timing"]
    assert len({f.key for f in found}) == 3


def test_the_policy_keeps_a_large_correction_for_a_human() -> None:
    big = bt(amount=2_000_000, fee=58_030)
    [f] = classify_transaction(big, None)
    assert f.certain and not f.healable(HealingPolicy(max_amount=500_000))
    assert f.healable(HealingPolicy(max_amount=5_000_000))


_views = st.builds(
    LedgerView,
    st.integers(-(10**7), 10**7),
    st.integers(-(10**5), 10**5),
    st.integers(-(10**7), 10**7),
)


@given(
    amount=st.integers(1, 10**7),
    fee=st.integers(0, 10**5),
    status=st.sampled_from(["pending", "available"]),
    converted=st.booleans(),
    booked=_views,
)
def test_the_certain_fixes_bring_the_ledger_to_stripes_figures(
    amount: int, fee: int, status: str, converted: bool, booked: LedgerView
) -> None:
    stripe = bt(amount=amount, fee=fee, status=status, rate="1.1" if converted else None)
    gross, booked_fee, settled = booked.gross, booked.fee, booked.settled
    for f in classify_transaction(stripe, booked):
        assert f.certain and f.fix is not None and f.fix.link is not None
        gross += f.fix.link.gross
        booked_fee += f.fix.link.fee
        settled += f.fix.link.settled
    assert (gross, booked_fee) == (stripe.amount, stripe.fee)
    # Settlement (not a finding) moves the rest once Stripe reports the funds available.
    assert settled in ((stripe.net if status == "available" else 0), 0)
    assert classify_transaction(stripe, LedgerView(gross, booked_fee, settled)) == []


# -- the pricing model and Stripe's own rate -------------------------------------------------------
def _charge(fee: int, *, intl: bool = False, converted: bool = False) -> PricedCharge:
    return PricedCharge("txn_1", "charge", "usd", "ch_1", 10_000, fee, intl, converted)


def test_a_fee_off_the_pricing_model_is_a_fee_mismatch_the_books_already_agree_with() -> None:
    model = PricingModel()
    assert check_pricing(_charge(320), model) is None  # 2.9 % + 30
    assert check_pricing(_charge(470, intl=True), model) is None  # + 1.5 %
    assert check_pricing(_charge(570, intl=True, converted=True), model) is None  # + 1 %
    f = check_pricing(_charge(330), model)
    assert f is not None and (f.kind, f.amount, f.key) == (
        "fee_mismatch", 10, "fee_mismatch:txn_1:pricing_model"
    )  # fmt: skip
    assert f.evidence["against"] == "pricing_model" and f.evidence["expected_fee"] == 320
    assert not f.certain and f.fix is None and not f.healable(POLICY)
    assert check_pricing(_charge(330), PricingModel(tolerance=10)) is None
    refund = PricedCharge("txn_2", "refund", "usd", "re_1", -10_000, 0, False, False)
    assert check_pricing(refund, model) is None  # only charges are priced


def test_a_converted_amount_off_stripes_own_rate_is_an_fx_mismatch_for_a_human() -> None:
    right = ConvertedAmount("txn_1", "usd", "ch_1", 5_435, "1.086957", 5_000, "eur", 5_435)
    assert check_rate(right) is None
    wrong = ConvertedAmount("txn_1", "usd", "ch_1", 5_440, "1.086957", 5_000, "eur", 5_435)
    f = check_rate(wrong)
    assert f is not None and (f.kind, f.amount, f.key) == (
        "fx_mismatch",
        5,
        "fx_mismatch:txn_1:rate",
    )
    assert f.evidence["against"] == "stripe_rate" and f.evidence["presentment"] == "5000 eur"
    assert not f.certain and f.fix is None


# -- bookings Stripe does not have -----------------------------------------------------------------
def test_a_booking_stripe_has_no_transaction_for_is_missing_in_stripe() -> None:
    booking = UnmatchedBooking(
        "je_1", "txn_phantom", "evt_1", "checkout.payment.succeeded", "pay_1", "usd", 1_234,
        LedgerView(1_234, 66, 0),
    )  # fmt: skip
    f = check_unmatched_booking(booking)
    assert f is not None and (f.kind, f.subject, f.amount) == (
        "missing_in_stripe",
        "txn_phantom",
        1_234,
    )
    assert f.evidence["entry"] == "je_1" and not f.certain and f.fix is None
    reversed_ = UnmatchedBooking(**{**booking.__dict__, "linked": LedgerView(0, 0, 0)})
    assert check_unmatched_booking(reversed_) is None  # a human reversed it: nothing left


def test_a_human_may_reverse_a_booking_stripe_does_not_have() -> None:
    paid = payment_succeeded("evt_1", "pay_1", Settlement("txn_x", "usd", 1_000, 59, 941), {})
    undo = reversal_of_unknown("je_1", paid, "txn_x")
    assert undo.source_event_id == "heal:missing_in_stripe:je_1"
    assert undo.link is not None and (undo.link.gross, undo.link.fee) == (-1_000, -59)
    assert {p.account: p.amount for p in undo.postings} == {
        "stripe_pending": -941, "stripe_fees": -59, "revenue": 1_000
    }  # fmt: skip


# -- payouts -------------------------------------------------------------------------------------
def _payout(**kw: object) -> PayoutFacts:
    base: dict[str, object] = {
        "id": "po_1", "currency": "usd", "status": "paid", "amount": 5_000, "bt_amount": -5_000,
        "contents_imported": True, "contents_count": 3, "contents_net": 5_000,
        "ledger_in_transit": 0, "ledger_bank": 5_000,
    }  # fmt: skip
    base.update(kw)
    return PayoutFacts(**base)


def test_a_payout_whose_figures_agree_is_no_discrepancy() -> None:
    assert check_payout(_payout()) is None
    assert (
        check_payout(_payout(status="in_transit", ledger_in_transit=5_000, ledger_bank=0)) is None
    )
    assert check_payout(_payout(status="failed", ledger_bank=0)) is None


def test_a_payout_whose_figures_disagree_is_a_payout_mismatch_for_a_human() -> None:
    altered = check_payout(_payout(amount=5_100))
    assert altered is not None and altered.kind == "payout_mismatch" and altered.amount == -100
    assert "balance transaction moved 5000" in altered.evidence["problems"]
    assert not altered.certain and altered.fix is None
    contents = check_payout(_payout(contents_net=4_900))
    assert contents is not None and contents.amount == -100
    assert "its 3 transactions net 4900" in contents.evidence["problems"]
    unbooked = check_payout(_payout(ledger_bank=0))
    assert (
        unbooked is not None
        and "ledger has 0 in transit and 0 in the bank" in (unbooked.evidence["problems"])
    )
    unseen = check_payout(_payout(bt_amount=None, contents_imported=False, ledger_bank=5_000))
    assert unseen is not None and unseen.amount == 5_000
    assert unseen.evidence["balance_transaction_amount"] == ""
    assert "not imported" in unseen.evidence["problems"]


# -- corrections a human approves ----------------------------------------------------------------
def test_an_approved_correction_is_derived_again_from_stripes_transaction() -> None:
    stripe = bt()
    missing = approved_correction("missing_in_ledger", stripe, None)
    assert missing is not None and missing.source_event_id == "heal:missing_in_ledger:txn_1"
    assert approved_correction("missing_in_ledger", stripe, LedgerView(10_000, 320, 0)) is None
    amount = approved_correction("amount_mismatch", stripe, LedgerView(9_900, 320, 0))
    assert amount is not None and amount.link is not None and amount.link.gross == 100
    assert _postings(amount) == {"stripe_pending": 100, "revenue": -100}
    fee = approved_correction("fee_mismatch", stripe, LedgerView(10_000, 300, 0))
    assert fee is not None and fee.link is not None and fee.link.fee == 20
    # Already corrected meanwhile, or a kind with no derivable correction: nothing to book.
    assert approved_correction("fee_mismatch", stripe, LedgerView(10_000, 320, 0)) is None
    assert approved_correction("payout_mismatch", stripe, None) is None


# -- tie-out -------------------------------------------------------------------------------------
def test_the_tie_out_compares_each_bucket_with_stripes() -> None:
    stripe = balance_by_currency(
        {"pending": [{"currency": "usd", "amount": 700}, {"currency": "eur", "amount": 5}],
         "available": [{"currency": "usd", "amount": 300}]}
    )  # fmt: skip
    assert stripe == {
        "usd": {"pending": 700, "available": 300},
        "eur": {"pending": 5, "available": 0},
    }
    line = tie_out(
        "usd", opening=400, ledger_pending=700, ledger_available=300, stripe=stripe["usd"]
    )
    assert (line["closing"], line["activity"], line["stripe_balance"], line["ties_out"]) == (
        1_000, 600, 1_000, True
    )  # fmt: skip
    # The same total in other buckets does not tie out.
    moved = tie_out(
        "usd", opening=0, ledger_pending=600, ledger_available=400, stripe=stripe["usd"]
    )
    assert not moved["ties_out"]
    assert tie_out("gbp", opening=0, ledger_pending=0, ledger_available=0, stripe=None)["ties_out"]
