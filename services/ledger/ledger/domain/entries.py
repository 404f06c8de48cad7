"""Journal entries: balanced per currency at construction, immutable afterwards.

LedgerError
├── UnbalancedEntry     postings of a currency do not sum to zero
├── UnknownAccount      a posting names an account outside the chart
├── InvalidPosting      zero amount, bad currency, empty entry
└── RefusedEvent        (service.ingestion) an envelope from an unknown source, of an unknown
                        type, or on another source's consumer: never booked, dead-lettered
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from .accounts import is_known

__all__ = [
    "ROLES",
    "InvalidPosting",
    "JournalEntry",
    "LedgerError",
    "Posting",
    "StripeLink",
    "UnbalancedEntry",
    "UnknownAccount",
]

# What an entry does to a Stripe balance transaction (see StripeLink).
ROLES = frozenset({"booking", "settlement", "adjustment", "reversal"})


class LedgerError(Exception):
    pass


class UnbalancedEntry(LedgerError):
    pass


class UnknownAccount(LedgerError):
    pass


class InvalidPosting(LedgerError):
    pass


@dataclass(frozen=True)
class Posting:
    account: str
    amount: int  # signed minor units: debit > 0, credit < 0
    currency: str

    def __post_init__(self) -> None:
        if not is_known(self.account):
            raise UnknownAccount(f"unknown account {self.account!r}")
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise InvalidPosting("amounts are integer minor units")
        if self.amount == 0:
            raise InvalidPosting(f"zero posting to {self.account}")
        if len(self.currency) != 3 or not self.currency.isalpha() or not self.currency.islower():
            raise InvalidPosting(f"bad currency {self.currency!r}")


@dataclass(frozen=True)
class StripeLink:
    """The balance transaction an entry accounts for, and what it books of it.

    `booking`: the first entry of a balance transaction (one per transaction); `settlement`:
    its net moved from pending to available; `adjustment`: a correction; `reversal`: undoes
    another entry. Summing gross, fee and settled over every entry linked to a transaction
    gives the ledger's view of it, which reconciliation compares with Stripe's.
    """

    balance_transaction_id: str
    role: str
    gross: int = 0
    fee: int = 0
    settled: int = 0  # net moved from stripe_pending to stripe_available

    def __post_init__(self) -> None:
        if not self.balance_transaction_id:
            raise InvalidPosting("a Stripe link needs its balance transaction id")
        if self.role not in ROLES:
            raise InvalidPosting(f"unknown link role {self.role!r}")

    def negated(self) -> StripeLink:
        return StripeLink(
            self.balance_transaction_id, "reversal", -self.gross, -self.fee, -self.settled
        )


@dataclass(frozen=True)
class JournalEntry:
    source_event_id: str
    source_type: str
    source_id: str
    description: str
    postings: tuple[Posting, ...]
    refs: dict[str, str] = field(default_factory=dict)
    link: StripeLink | None = None

    def __post_init__(self) -> None:
        if not self.postings:
            raise InvalidPosting("an entry needs postings")
        if not self.source_event_id:
            raise InvalidPosting("an entry needs its source event id")
        totals: dict[str, int] = defaultdict(int)
        for p in self.postings:
            totals[p.currency] += p.amount
        off = {c: t for c, t in totals.items() if t != 0}
        if off:
            raise UnbalancedEntry(f"entry {self.source_event_id} does not balance: {off}")

    def reversed(self, source_event_id: str, description: str) -> JournalEntry:
        """The entry that undoes this one (corrections are new entries, never edits)."""
        return JournalEntry(
            source_event_id=source_event_id,
            source_type="reversal",
            source_id=self.source_id,
            description=description,
            postings=tuple(Posting(p.account, -p.amount, p.currency) for p in self.postings),
            refs={**self.refs, "reverses": self.source_event_id},
            link=self.link.negated() if self.link is not None else None,
        )
