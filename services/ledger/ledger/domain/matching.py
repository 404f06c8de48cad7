"""Matching and classification: given the facts, which discrepancies (pure; no I/O).

Reconciliation's adapters find the candidates set-based (only what differs comes back from
the database); the rules here decide, for each one, which discrepancy kinds it is, with
which evidence, whether Stripe's own record makes the correction certain, and the adjusting
entry that would heal it. Whether it heals is the policy's call (`Finding.healable`).

- `classify_transaction`: a balance transaction against what the ledger booked of it
  (`LedgerView`): missing_in_ledger, unbooked_dispute, amount_mismatch, and fx_mismatch or
  fee_mismatch against the ledger, timing;
- `check_pricing`: a charge's fee against the pricing model (`PricedCharge`): fee_mismatch
  against pricing_model;
- `check_rate`: a converted transaction's presentment side at its own rate
  (`ConvertedAmount`): fx_mismatch against stripe_rate;
- `check_unmatched_booking`: a booking of a transaction Stripe does not have
  (`UnmatchedBooking`): missing_in_stripe;
- `check_payout`: a payout, its transaction, its contents and the ledger's movement
  (`PayoutFacts`): payout_mismatch.

A human may approve what the policy would not heal on its own: `approved_correction` derives
that correction again from Stripe's transaction (never from the request), and
`reversal_of_unknown` undoes a booking Stripe has no record of.

Money that belongs to a connected account (transfers, application fees) is classified with
the same rules; its counter account comes from `rules.counter_account`, the one place a
per-connected-account liability would key the books by account.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .discrepancies import HealingPolicy
from .entries import JournalEntry
from .pricing import PricingModel
from .rules import (
    BalanceTransaction,
    adjustment,
    from_balance_transaction,
    unsettlement,
)

__all__ = [
    "DISPUTE_CATEGORIES",
    "PAYOUT_TYPES",
    "PRICED_TYPES",
    "ConvertedAmount",
    "Finding",
    "LedgerView",
    "PayoutFacts",
    "PricedCharge",
    "UnmatchedBooking",
    "approved_correction",
    "check_payout",
    "check_pricing",
    "check_rate",
    "check_unmatched_booking",
    "classify_transaction",
    "gross_account",
    "reversal_of_unknown",
]

# Balance transactions the ledger books from Stripe's view alone (no service publishes them).
PAYOUT_TYPES = ("payout", "payout_failure", "payout_cancel")
# Transactions whose fee the business's pricing model predicts.
PRICED_TYPES = ("charge", "payment")
# An `adjustment` of these reporting categories is a dispute's money movement.
DISPUTE_CATEGORIES = ("dispute", "dispute_reversal")
# Money given back to a customer, or returned when that failed: contra-revenue either way.
_REFUND_TYPES = frozenset({"refund", "payment_refund", "refund_failure"})


@dataclass(frozen=True)
class Finding:
    """One discrepancy as a run sees it; `key` is stable across runs (kind + subject + what
    the ledger had), so a re-run finds the same record and books nothing twice."""

    kind: str
    subject: str
    currency: str
    amount: int
    evidence: dict[str, Any]
    certain: bool = False
    fix: JournalEntry | None = None  # the adjusting entry that heals it, when certain
    key_suffix: str = ""

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.subject}{self.key_suffix}"

    def healable(self, policy: HealingPolicy) -> bool:
        """Whether the policy lets the reconciler book `fix` on its own."""
        return self.fix is not None and policy.should_heal(self.kind, self.certain, self.amount)


@dataclass(frozen=True)
class LedgerView:
    """What every entry linked to one balance transaction booked of it, summed."""

    gross: int = 0
    fee: int = 0
    settled: int = 0

    @property
    def nets_to_nothing(self) -> bool:
        return (self.gross, self.fee, self.settled) == (0, 0, 0)


def gross_account(bt: BalanceTransaction, *, converted: bool = False) -> str:
    """Where a correction of a transaction's gross lands: a conversion difference in
    fx_gain_loss, refunds (and their failures) in refunds, anything else by its sign."""
    if converted:
        return "fx_gain_loss"
    if bt.type in _REFUND_TYPES or bt.amount < 0:
        return "refunds"
    return "revenue"


def _evidence(bt: BalanceTransaction) -> dict[str, Any]:
    return {
        "balance_transaction": bt.id,
        "type": bt.type,
        "reporting_category": bt.reporting_category,
        "source": bt.source,
        "stripe_amount": bt.amount,
        "stripe_fee": bt.fee,
        "stripe_net": bt.net,
        "stripe_status": bt.status,
        "exchange_rate": "" if bt.exchange_rate is None else str(bt.exchange_rate),
    }


def classify_transaction(bt: BalanceTransaction, booked: LedgerView | None) -> list[Finding]:
    """Stripe's transaction against the ledger's view of it (None: nothing booked it).

    Unbooked: missing_in_ledger (unbooked_dispute for a dispute's adjustment), certain when
    Stripe's record says which account the money belongs to. Booked: a gross other than
    Stripe's (fx_mismatch when converted, else amount_mismatch), a fee other than Stripe's
    (fee_mismatch), and funds the ledger moved to available that Stripe still holds pending
    (timing; a transaction Stripe made available but the ledger has not yet settled is not
    a discrepancy: settlement books it).
    """
    evidence = _evidence(bt)
    if booked is None:
        dispute = bt.type == "adjustment" and bt.reporting_category in DISPUTE_CATEGORIES
        kind = "unbooked_dispute" if dispute else "missing_in_ledger"
        fix = from_balance_transaction(bt, f"heal:{kind}:{bt.id}", "reconciliation.healed")
        return [Finding(kind, bt.id, bt.currency, bt.net, evidence, fix is not None, fix)]
    g, f, st = booked.gross, booked.fee, booked.settled
    evidence |= {"ledger_amount": g, "ledger_fee": f, "ledger_settled": st}
    out: list[Finding] = []
    if g != bt.amount:
        converted = bt.exchange_rate is not None
        kind = "fx_mismatch" if converted else "amount_mismatch"
        fix = adjustment(
            f"heal:{kind}:{bt.id}:{g}",
            bt.id,
            bt.currency,
            gross_delta=bt.amount - g,
            gross_account=gross_account(bt, converted=converted),
            refs={"kind": kind},
            description=f"{kind}: {bt.id} booked {g}, Stripe moved {bt.amount}",
        )
        out.append(
            Finding(kind, bt.id, bt.currency, bt.amount - g, evidence | {"against": "ledger"},
                    True, fix, f":ledger:{g}")
        )  # fmt: skip
    if f != bt.fee:
        fix = adjustment(
            f"heal:fee_mismatch:{bt.id}:{f}",
            bt.id,
            bt.currency,
            fee_delta=bt.fee - f,
            gross_account="stripe_fees",
            refs={"kind": "fee_mismatch"},
            description=f"fee_mismatch: {bt.id} booked fee {f}, Stripe charged {bt.fee}",
        )
        out.append(
            Finding("fee_mismatch", bt.id, bt.currency, bt.fee - f,
                    evidence | {"against": "ledger"}, True, fix, f":ledger:{f}")
        )  # fmt: skip
    want = bt.net if bt.status == "available" else 0
    if st != want and not (bt.status == "available" and st == 0):
        delta = want - st
        fix = unsettlement(
            f"heal:timing:{bt.id}:{st}", bt.id, bt.currency, -delta, {"kind": "timing"}
        )
        out.append(
            Finding("timing", bt.id, bt.currency, delta,
                    evidence | {"ledger_available": st, "stripe_available": want},
                    True, fix, f":{st}")
        )  # fmt: skip
    return out


@dataclass(frozen=True)
class PricedCharge:
    """A charge's figures and what decides its expected fee."""

    balance_transaction_id: str
    type: str
    currency: str
    source: str
    amount: int
    fee: int
    international: bool
    converted: bool


def check_pricing(c: PricedCharge, model: PricingModel) -> Finding | None:
    """Stripe's fee against the business's pricing model. Never certain: the books already
    equal Stripe here; a difference is a question for the business."""
    if c.type not in PRICED_TYPES or c.amount <= 0:
        return None
    expected = model.expected_fee(c.amount, international=c.international, converted=c.converted)
    if abs(c.fee - expected) <= model.tolerance:
        return None
    return Finding(
        "fee_mismatch",
        c.balance_transaction_id,
        c.currency,
        c.fee - expected,
        {
            "against": "pricing_model",
            "balance_transaction": c.balance_transaction_id,
            "source": c.source,
            "stripe_amount": c.amount,
            "stripe_fee": c.fee,
            "expected_fee": expected,
            "international": c.international,
            "converted": c.converted,
            "model": (f"{model.percent_bp}bp+{model.fixed}, +{model.international_bp}bp intl, "
                      f"+{model.fx_bp}bp fx"),
        },
        key_suffix=":pricing_model",
    )  # fmt: skip


@dataclass(frozen=True)
class ConvertedAmount:
    """A converted transaction and its presentment side (from its expanded source)."""

    balance_transaction_id: str
    currency: str
    source: str
    amount: int
    exchange_rate: str
    source_amount: int | None
    source_currency: str | None
    expected_amount: int | None  # the presentment amount at the transaction's own rate


def check_rate(c: ConvertedAmount) -> Finding | None:
    """Presentment amount x Stripe's rate against the amount Stripe moved. Never certain:
    the books follow Stripe's amount; the rate itself is in question."""
    if c.expected_amount is None or c.expected_amount == c.amount:
        return None
    return Finding(
        "fx_mismatch",
        c.balance_transaction_id,
        c.currency,
        c.amount - c.expected_amount,
        {
            "against": "stripe_rate",
            "balance_transaction": c.balance_transaction_id,
            "source": c.source,
            "presentment": f"{c.source_amount} {c.source_currency}",
            "exchange_rate": c.exchange_rate,
            "stripe_amount": c.amount,
            "expected_amount": c.expected_amount,
        },
        key_suffix=":rate",
    )


@dataclass(frozen=True)
class UnmatchedBooking:
    """A booking of a transaction Stripe does not have, and what all its entries net to."""

    entry_id: str
    balance_transaction_id: str
    source_event_id: str
    source_type: str
    source_id: str
    currency: str
    gross: int
    linked: LedgerView


def check_unmatched_booking(b: UnmatchedBooking) -> Finding | None:
    """missing_in_stripe, unless the booking was already reversed (by a human's decision):
    then it nets to nothing. Never certain: a human may reverse it."""
    if b.linked.nets_to_nothing:
        return None
    return Finding(
        "missing_in_stripe",
        b.balance_transaction_id,
        b.currency,
        b.gross,
        {
            "entry": b.entry_id,
            "source_event_id": b.source_event_id,
            "source_type": b.source_type,
            "source_id": b.source_id,
            "balance_transaction": b.balance_transaction_id,
            "ledger_amount": b.gross,
        },
    )


@dataclass(frozen=True)
class PayoutFacts:
    """A payout as Stripe reports it, its own balance transaction's amount (None: not
    imported), what Stripe says it swept, and the ledger's in-transit and bank movement."""

    id: str
    currency: str
    status: str
    amount: int
    bt_amount: int | None
    contents_imported: bool
    contents_count: int
    contents_net: int
    ledger_in_transit: int
    ledger_bank: int


def check_payout(p: PayoutFacts) -> Finding | None:
    """payout_mismatch when the payout's amount, its transaction, its contents and the
    ledger's movement disagree. Never certain: which figure is wrong needs a human."""
    moved = -p.bt_amount if p.bt_amount is not None else None
    problems: list[str] = []
    if moved is None:
        problems.append("the payout's balance transaction is not imported")
    elif moved != p.amount:
        problems.append(f"payout amount {p.amount} but its balance transaction moved {moved}")
    if p.contents_imported and p.contents_net != p.amount:
        problems.append(f"its {p.contents_count} transactions net {p.contents_net}")
    basis = moved if moved is not None else p.amount
    want_transit = basis if p.status in ("pending", "in_transit") else 0
    want_bank = basis if p.status == "paid" else 0
    if p.ledger_in_transit != want_transit or p.ledger_bank != want_bank:
        problems.append(
            f"ledger has {p.ledger_in_transit} in transit and {p.ledger_bank} in the bank "
            f"for a {p.status} payout"
        )
    if not problems:
        return None
    diff = (moved - p.amount) if moved is not None else p.amount
    if diff == 0 and p.contents_imported:
        diff = p.contents_net - p.amount
    return Finding(
        "payout_mismatch",
        p.id,
        p.currency,
        diff,
        {
            "payout": p.id,
            "status": p.status,
            "payout_amount": p.amount,
            "balance_transaction_amount": "" if moved is None else moved,
            "contents_net": p.contents_net,
            "contents_count": p.contents_count,
            "ledger_in_transit": p.ledger_in_transit,
            "ledger_bank": p.ledger_bank,
            "problems": "; ".join(problems),
        },
    )


def approved_correction(
    kind: str, bt: BalanceTransaction, booked: LedgerView | None
) -> JournalEntry | None:
    """The correction a human approved for a discrepancy of `bt` (an amount mismatch, a
    correction above the policy's limit), derived again from Stripe's transaction and what
    the ledger booked of it now (None: nothing booked it); None when there is none."""
    if kind in ("missing_in_ledger", "unbooked_dispute"):
        if booked is not None:
            return None
        return from_balance_transaction(bt, f"heal:{kind}:{bt.id}", "reconciliation.healed")
    view = booked or LedgerView()
    if kind in ("amount_mismatch", "fx_mismatch") and view.gross != bt.amount:
        return adjustment(
            f"heal:{kind}:{bt.id}:{view.gross}", bt.id, bt.currency,
            gross_delta=bt.amount - view.gross,
            gross_account=gross_account(bt, converted=kind == "fx_mismatch"),
            refs={"kind": kind},
            description=f"{kind}: {bt.id} to Stripe's {bt.amount} (approved)",
        )  # fmt: skip
    if kind == "fee_mismatch" and view.fee != bt.fee:
        return adjustment(
            f"heal:fee_mismatch:{bt.id}:{view.fee}", bt.id, bt.currency,
            fee_delta=bt.fee - view.fee, gross_account="stripe_fees",
            refs={"kind": "fee_mismatch"}, description=f"fee of {bt.id} to Stripe's (approved)",
        )  # fmt: skip
    return None


def reversal_of_unknown(entry_id: str, entry: JournalEntry, subject: str) -> JournalEntry:
    """Undo a booking of a transaction Stripe has no record of (a human's decision)."""
    return entry.reversed(
        f"heal:missing_in_stripe:{entry_id}", f"reversal of {entry_id}: Stripe has no {subject}"
    )
