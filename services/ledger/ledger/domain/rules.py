"""Posting rules: which entry each business fact makes.

Everything is booked in the settlement currency of Stripe's balance transaction, so the
books follow the money Stripe actually holds (gross, fee and net to the cent). Every balance
transaction's net lands in `stripe_pending` when it is booked and moves to
`stripe_available` when Stripe reports it available (`settlement`), so the two accounts
always tie out with Stripe's pending and available balances.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .entries import JournalEntry, Posting, StripeLink
from .money import convert

__all__ = [
    "BOOKABLE_TYPES",
    "BalanceTransaction",
    "Settlement",
    "adjustment",
    "counter_account",
    "dispute_movement",
    "from_balance_transaction",
    "payment_refund_failed",
    "payment_refunded",
    "payment_succeeded",
    "payout_paid",
    "settlement",
    "unsettlement",
]


@dataclass(frozen=True)
class Settlement:
    """A balance transaction's figures (signed, settlement currency)."""

    balance_transaction_id: str
    currency: str
    gross: int
    fee: int
    net: int
    exchange_rate: Decimal | None = None


@dataclass(frozen=True)
class BalanceTransaction:
    """Stripe's view of one movement of funds, as imported."""

    id: str
    type: str
    reporting_category: str
    source: str
    currency: str
    amount: int
    fee: int
    net: int
    status: str
    exchange_rate: Decimal | None = None

    @property
    def settlement(self) -> Settlement:
        return Settlement(
            self.id, self.currency, self.amount, self.fee, self.net, self.exchange_rate
        )


def _legs(*legs: tuple[str, int, str]) -> tuple[Posting, ...]:
    return tuple(Posting(a, amount, c) for a, amount, c in legs if amount != 0)


def _booking(s: Settlement) -> StripeLink:
    return StripeLink(s.balance_transaction_id, "booking", gross=s.gross, fee=s.fee)


def payment_succeeded(
    event_id: str, payment_id: str, s: Settlement, refs: dict[str, str]
) -> JournalEntry:
    """Debit Stripe pending (net) and Stripe fees (fee); credit revenue (gross)."""
    extra = {} if s.exchange_rate is None else {"exchange_rate": str(s.exchange_rate)}
    return JournalEntry(
        source_event_id=event_id,
        source_type="checkout.payment.succeeded",
        source_id=payment_id,
        description=f"card payment {payment_id}",
        postings=_legs(
            ("stripe_pending", s.net, s.currency),
            ("stripe_fees", s.fee, s.currency),
            ("revenue", -s.gross, s.currency),
        ),
        refs={**refs, **extra, "balance_transaction": s.balance_transaction_id},
        link=_booking(s),
    )


def payment_refunded(
    event_id: str,
    payment_id: str,
    refund_id: str,
    s: Settlement,
    refs: dict[str, str],
    *,
    presentment: tuple[int, str] | None = None,
    charge_rate: Decimal | None = None,
) -> JournalEntry:
    """A refund's balance transaction is negative: debit refunds, credit Stripe pending.

    Stripe keeps its original fee on a refund (the refund's fee is normally 0); any fee it
    does charge is booked to fees. A converted refund settles at that day's rate: refunds
    are debited at the charge's rate (`charge_rate`, what revenue was credited at) and the
    difference goes to fx_gain_loss.
    """
    out = -s.gross  # positive amount leaving
    at_charge_rate = out
    if presentment is not None and charge_rate is not None and s.exchange_rate is not None:
        amount, currency = presentment
        at_charge_rate = convert(amount, currency, s.currency, charge_rate)
    return JournalEntry(
        source_event_id=event_id,
        source_type="checkout.payment.refunded",
        source_id=payment_id,
        description=f"refund {refund_id} of payment {payment_id}",
        postings=_legs(
            ("refunds", at_charge_rate, s.currency),
            ("fx_gain_loss", out - at_charge_rate, s.currency),
            ("stripe_fees", s.fee, s.currency),
            ("stripe_pending", s.net, s.currency),
        ),
        refs={**refs, "balance_transaction": s.balance_transaction_id, "refund": refund_id},
        link=_booking(s),
    )


def payment_refund_failed(
    event_id: str,
    payment_id: str,
    refund_id: str,
    s: Settlement,
    refs: dict[str, str],
    *,
    presentment: tuple[int, str] | None = None,
    charge_rate: Decimal | None = None,
) -> JournalEntry:
    """Stripe failed (or canceled) a refund and gave the funds back: its `refund_failure`
    balance transaction is positive. The refund's effect is reversed: credit refunds at the
    charge's rate (what the refund debited), the rest of a converted return to fx_gain_loss,
    any fee to fees; the net comes back to Stripe pending.
    """
    back = s.gross  # positive amount returned
    at_charge_rate = back
    if presentment is not None and charge_rate is not None and s.exchange_rate is not None:
        amount, currency = presentment
        at_charge_rate = convert(amount, currency, s.currency, charge_rate)
    return JournalEntry(
        source_event_id=event_id,
        source_type="checkout.payment.refund_failed",
        source_id=payment_id,
        description=f"refund {refund_id} of payment {payment_id} failed: funds returned",
        postings=_legs(
            ("stripe_pending", s.net, s.currency),
            ("stripe_fees", s.fee, s.currency),
            ("refunds", -at_charge_rate, s.currency),
            ("fx_gain_loss", at_charge_rate - back, s.currency),
        ),
        refs={**refs, "balance_transaction": s.balance_transaction_id, "refund": refund_id},
        link=_booking(s),
    )


def dispute_movement(
    event_id: str, source_type: str, dispute_id: str, s: Settlement, refs: dict[str, str]
) -> JournalEntry:
    """A dispute's `adjustment`: withdrawn (gross < 0, fee > 0) or reinstated (both flipped).

    Debit dispute losses (-gross) and dispute fees (fee); the net leaves (or returns to)
    Stripe pending. A won dispute's reinstatement undoes exactly what the withdrawal booked.
    """
    return JournalEntry(
        source_event_id=event_id,
        source_type=source_type,
        source_id=dispute_id,
        description=f"dispute {dispute_id}: funds {'withdrawn' if s.gross < 0 else 'reinstated'}",
        postings=_legs(
            ("dispute_losses", -s.gross, s.currency),
            ("dispute_fees", s.fee, s.currency),
            ("stripe_pending", s.net, s.currency),
        ),
        refs={**refs, "balance_transaction": s.balance_transaction_id, "dispute": dispute_id},
        link=_booking(s),
    )


# Balance transaction types the ledger books from Stripe's own record, and the account the
# gross lands in (the other side of stripe_pending). Charges, refunds, refund failures and
# disputes normally come from checkout's events; this table is what healing books when an
# event never came.
_COUNTER_ACCOUNT = {
    "charge": "revenue",
    "payment": "revenue",
    "refund": "refunds",
    "payment_refund": "refunds",
    "refund_failure": "refunds",
    "payout": "payouts_in_transit",
    "payout_failure": "payouts_in_transit",
    "payout_cancel": "payouts_in_transit",
    "transfer": "connected_payable",
    "transfer_cancel": "connected_payable",
    "transfer_failure": "connected_payable",
    "transfer_refund": "connected_payable",
    "application_fee": "platform_fees",
    "application_fee_refund": "platform_fees",
    "stripe_fee": "stripe_fees",
    "stripe_fx_fee": "stripe_fees",
}
BOOKABLE_TYPES = frozenset(_COUNTER_ACCOUNT) | {"adjustment"}


def counter_account(bt: BalanceTransaction) -> str | None:
    """The account a balance transaction's gross lands in when booked from Stripe's record
    (None: Stripe's record cannot say).

    Transfers and application fees land in one connected_payable / platform_fees per
    currency today. A per-connected-account liability (once the payouts service publishes
    transfers) is chosen here, from the transaction's connected account; matching needs no
    change for it, since it compares what entries booked of each balance transaction (gross,
    fee, settled), whichever accounts they posted to."""
    return _COUNTER_ACCOUNT.get(bt.type)


def from_balance_transaction(
    bt: BalanceTransaction, event_id: str, source_type: str
) -> JournalEntry | None:
    """The booking Stripe's balance transaction proves, or None when it cannot say which
    account the money belongs to (an `other_adjustment`, a reserve: a human decides)."""
    s = bt.settlement
    refs = {"balance_transaction": bt.id, "stripe_source": bt.source or ""}
    if bt.type == "adjustment":
        if bt.reporting_category in ("dispute", "dispute_reversal"):
            return dispute_movement(event_id, source_type, bt.source, s, refs)
        return None
    counter = counter_account(bt)
    if counter is None:
        return None
    return JournalEntry(
        source_event_id=event_id,
        source_type=source_type,
        source_id=bt.source or bt.id,
        description=f"{bt.type} {bt.source or bt.id} from Stripe's balance transaction",
        postings=_legs(
            ("stripe_pending", s.net, s.currency),
            ("stripe_fees", s.fee, s.currency),
            (counter, -s.gross, s.currency),
        ),
        refs=refs,
        link=_booking(s),
    )


def settlement(bt_id: str, currency: str, net: int, source_id: str) -> JournalEntry:
    """Stripe made a balance transaction's net available: pending -> available."""
    return JournalEntry(
        source_event_id=f"settle:{bt_id}",
        source_type="stripe.balance.settled",
        source_id=source_id or bt_id,
        description=f"{bt_id} available",
        postings=(
            Posting("stripe_available", net, currency),
            Posting("stripe_pending", -net, currency),
        ),
        refs={"balance_transaction": bt_id},
        link=StripeLink(bt_id, "settlement", settled=net),
    )


def unsettlement(
    event_id: str, bt_id: str, currency: str, net: int, refs: dict[str, str]
) -> JournalEntry:
    """Undo a settlement the ledger booked too early (Stripe still holds the funds pending)."""
    return JournalEntry(
        source_event_id=event_id,
        source_type="reconciliation.adjustment",
        source_id=bt_id,
        description=f"{bt_id} still pending at Stripe: available -> pending",
        postings=(
            Posting("stripe_pending", net, currency),
            Posting("stripe_available", -net, currency),
        ),
        refs={**refs, "balance_transaction": bt_id},
        link=StripeLink(bt_id, "adjustment", settled=-net),
    )


def payout_paid(payout_id: str, amount: int, currency: str, bt_id: str) -> JournalEntry:
    """The bank confirmed a payout: payouts in transit -> bank."""
    return JournalEntry(
        source_event_id=f"payout-paid:{payout_id}",
        source_type="stripe.payout.paid",
        source_id=payout_id,
        description=f"payout {payout_id} arrived",
        postings=(
            Posting("bank", amount, currency),
            Posting("payouts_in_transit", -amount, currency),
        ),
        refs={"payout": payout_id, "balance_transaction": bt_id},
    )


def adjustment(
    event_id: str,
    bt_id: str,
    currency: str,
    *,
    gross_delta: int = 0,
    fee_delta: int = 0,
    gross_account: str,
    refs: dict[str, str],
    description: str,
) -> JournalEntry:
    """Bring the ledger's booking of a balance transaction to Stripe's figures.

    `gross_delta` = Stripe's gross - the ledger's (booked against `gross_account`, e.g.
    fx_gain_loss for a conversion difference); `fee_delta` likewise against stripe_fees. The
    net difference lands in stripe_pending, where the booking put the net.
    """
    net_delta = gross_delta - fee_delta
    return JournalEntry(
        source_event_id=event_id,
        source_type="reconciliation.adjustment",
        source_id=bt_id,
        description=description,
        postings=_legs(
            ("stripe_pending", net_delta, currency),
            ("stripe_fees", fee_delta, currency),
            (gross_account, -gross_delta, currency),
        ),
        refs={**refs, "balance_transaction": bt_id},
        link=StripeLink(bt_id, "adjustment", gross=gross_delta, fee=fee_delta),
    )
