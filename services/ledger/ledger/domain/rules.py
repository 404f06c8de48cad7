"""Posting rules: which entry each business fact makes.

Everything is booked in the settlement currency of Stripe's balance transaction, so the
books follow the money Stripe actually holds (gross, fee and net to the cent).
"""

from __future__ import annotations

from dataclasses import dataclass

from .entries import JournalEntry, Posting

__all__ = ["Settlement", "payment_refunded", "payment_succeeded"]


@dataclass(frozen=True)
class Settlement:
    """A balance transaction's figures (signed, settlement currency)."""

    balance_transaction_id: str
    currency: str
    gross: int
    fee: int
    net: int


def payment_succeeded(
    event_id: str, payment_id: str, s: Settlement, refs: dict[str, str]
) -> JournalEntry:
    """Debit Stripe pending (net) and Stripe fees (fee); credit revenue (gross)."""
    postings = [Posting("stripe_pending", s.net, s.currency)]
    if s.fee:
        postings.append(Posting("stripe_fees", s.fee, s.currency))
    postings.append(Posting("revenue", -s.gross, s.currency))
    return JournalEntry(
        source_event_id=event_id,
        source_type="checkout.payment.succeeded",
        source_id=payment_id,
        description=f"card payment {payment_id}",
        postings=tuple(postings),
        refs={**refs, "balance_transaction": s.balance_transaction_id},
    )


def payment_refunded(
    event_id: str, payment_id: str, refund_id: str, s: Settlement, refs: dict[str, str]
) -> JournalEntry:
    """A refund's balance transaction is negative: debit refunds, credit Stripe pending.

    Stripe keeps its original fee on a refund (the refund's fee is normally 0); any fee it
    does charge is booked to fees.
    """
    gross = -s.gross  # positive amount leaving
    net = -s.net
    postings = [Posting("refunds", gross, s.currency)]
    if s.fee:
        postings.append(Posting("stripe_fees", s.fee, s.currency))
    postings.append(Posting("stripe_pending", -net, s.currency))
    return JournalEntry(
        source_event_id=event_id,
        source_type="checkout.payment.refunded",
        source_id=payment_id,
        description=f"refund {refund_id} of payment {payment_id}",
        postings=tuple(postings),
        refs={**refs, "balance_transaction": s.balance_transaction_id, "refund": refund_id},
    )
