"""Posting entries from other services' events, exactly once, and reading the books."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from opentelemetry import trace
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from payplane.events import Inbox
from payplane.events.v1 import envelope_pb2
from payplane.grpckit.errors import InvalidArgument, NotFound

from ..adapters.journal import Journal, StatementRow, StoredEntry
from ..domain.accounts import ACCOUNTS, is_known
from ..domain.chain import ChainBreak, canonical, entry_hash, verify_chain
from ..domain.entries import JournalEntry
from ..domain.money import parse_rate
from .ingestion import RefusedEvent, entries_for

__all__ = ["CONSUMER", "Ledger", "Statement", "sequence_cursor"]

log = logging.getLogger("ledger")
_tracer = trace.get_tracer("ledger")
CONSUMER = "ledger-checkout"


@dataclass(frozen=True)
class Statement:
    account: str
    currency: str
    opening: int
    closing: int
    debits: int
    credits: int
    lines: list[tuple[StatementRow, int]]  # (line, running balance after it)
    next_token: str


class Ledger:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], inbox: Inbox) -> None:
        self.sessions = sessions
        self.inbox = inbox

    # -- ingestion ---------------------------------------------------------------------------
    async def handle_event(
        self, envelope: envelope_pb2.Envelope, consumer: str = CONSUMER
    ) -> str | None:
        """Book the event's entries once: the inbox claim and the entries commit together.
        An envelope no source's contract covers raises RefusedEvent (nothing booked or
        claimed; the consumer dead-letters it)."""
        try:
            made = await entries_for(envelope, self, consumer)
        except RefusedEvent as exc:
            log.error("refused on %s: %s", consumer, exc)
            raise
        with _tracer.start_as_current_span(
            "ledger.post", attributes={"ledger.source_event_id": envelope.event_id}
        ) as span:
            entry_id = await self._post(envelope, made, consumer)
            span.set_attribute("ledger.entry_id", entry_id or "")
        return entry_id

    async def _post(
        self, envelope: envelope_pb2.Envelope, made: list[JournalEntry], consumer: str
    ) -> str | None:
        async with self.sessions.begin() as session:
            if not await self.inbox.claim(session, consumer, envelope.event_id):
                return None  # already applied (a redelivery or a duplicate)
            if not made:
                return None
            ids = await Journal(session).append_many(made)
        first = next((i for i in ids if i), None)
        if first is None:
            log.info(
                "%s %s: already booked (by healing or earlier)", envelope.type, envelope.event_id
            )
        else:
            log.info("posted %s for %s %s", first, envelope.type, envelope.subject_id)
        return first

    async def post(self, entry: JournalEntry) -> str | None:
        """Book an entry directly (adjustments, tools); None if its source is already booked."""
        async with self.sessions.begin() as session:
            return await Journal(session).append(entry)

    async def charge_rate(self, payment_id: str) -> Decimal | None:
        """The exchange rate a payment's charge was booked at (None: not converted/unknown)."""
        async with self.sessions() as session:
            refs = await Journal(session).refs_of(payment_id, "checkout.payment.succeeded")
        return None if refs is None else parse_rate(refs.get("exchange_rate"))

    # -- reading -----------------------------------------------------------------------------
    async def balance(
        self, account: str, currency: str, *, at: datetime | None = None, seq: int | None = None
    ) -> tuple[int, int]:
        _account_and_currency(account, currency)
        if seq is not None and seq < 0:
            raise InvalidArgument("as_of_seq: must not be negative (0: not set)")
        async with self.sessions() as session:
            journal = Journal(session)
            if at is None and seq is None:
                return await journal.balance(account, currency.lower())
            return await journal.balance_as_of(account, currency.lower(), at=at, seq=seq)

    async def statement(
        self,
        account: str,
        currency: str,
        *,
        since: datetime | None,
        until: datetime | None,
        page_size: int,
        page_token: str,
    ) -> Statement:
        _account_and_currency(account, currency)
        currency = currency.lower()
        size = min(max(page_size or 100, 1), 1000)
        after = sequence_cursor(page_token)
        async with self.sessions() as session:
            journal = Journal(session)
            opening = 0
            if since is not None:
                opening, _ = await journal.balance_as_of(account, currency, at=since, before=True)
            debits, credits = await journal.period_totals(
                account, currency, since=since, until=until
            )
            # Where this page starts: recomputed from the postings, never taken from the token,
            # so the balances shown are the books' whatever a client sends.
            balance = opening
            if after:
                before = await journal.period_totals(
                    account, currency, since=since, until=until, upto_seq=after
                )
                balance += sum(before)
            rows, more = await journal.statement(
                account, currency, since=since, until=until, after_seq=after, size=size
            )
        lines = []
        for row in rows:
            balance += row.amount
            lines.append((row, balance))
        token = str(rows[-1].seq) if more and rows else ""
        return Statement(
            account, currency, opening, opening + debits + credits, debits, credits, lines, token
        )

    async def entry(self, entry_id: str) -> StoredEntry:
        async with self.sessions() as session:
            found = await Journal(session).get(entry_id)
        if found is None:
            raise NotFound(f"entry {entry_id} not found")
        return found

    async def entries(
        self, *, account: str, source_id: str, page_size: int, page_token: str
    ) -> tuple[list[StoredEntry], str]:
        size = min(max(page_size or 50, 1), 500)
        after = sequence_cursor(page_token) or None
        async with self.sessions() as session:
            items, more = await Journal(session).page(
                account=account, source_id=source_id, size=size, after_seq=after
            )
        return items, str(items[-1].seq) if more and items else ""

    # -- integrity ---------------------------------------------------------------------------
    async def verify(self) -> list[ChainBreak]:
        """Recompute the chain from stored entries; also check each entry balances and the
        running balances equal the postings. Every problem found (empty: intact)."""
        problems: list[ChainBreak] = []
        async with self.sessions() as session:
            journal = Journal(session)
            last_seq, last_hash = 0, ""
            rows: list[tuple[int, str, str, bytes]] = []
            async for batch in journal.iter_chain():
                for stored in batch:
                    body = canonical(
                        stored.entry,
                        seq=stored.seq,
                        entry_id=stored.id,
                        created_at=stored.created_at,
                    )
                    rows.append((stored.seq, stored.prev_hash, stored.hash, body))
                    totals: dict[str, int] = {}
                    for p in stored.entry.postings:
                        totals[p.currency] = totals.get(p.currency, 0) + p.amount
                    if any(totals.values()) or not stored.entry.postings:
                        problems.append(ChainBreak(stored.seq, f"entry does not balance: {totals}"))
                    last_seq, last_hash = stored.seq, stored.hash
            problems.extend(verify_chain(rows))
            head_seq, head_hash = await journal.head()
            if (head_seq, head_hash) != (last_seq, last_hash or head_hash) or (
                last_seq and head_hash != last_hash
            ):
                problems.append(ChainBreak(head_seq, "chain head does not match the last entry"))
            stored_balances = await journal.stored_balances()
            from_postings = await journal.totals()
            for key in sorted(set(stored_balances) | set(from_postings)):
                if stored_balances.get(key, 0) != from_postings.get(key, 0):
                    problems.append(
                        ChainBreak(0, f"balance {key} is {stored_balances.get(key, 0)} but its "
                                      f"postings sum to {from_postings.get(key, 0)}")
                    )  # fmt: skip
        return problems


_MAX_SEQ = 2**63 - 1
_CURRENCY = re.compile(r"[A-Za-z]{3}")


def sequence_cursor(cursor: str) -> int:
    """A journal position written by this service ("" = the start, 0); anything else that is
    not a plain sequence number in range is refused rather than handed to the database."""
    if not cursor:
        return 0
    if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 19) or not (
        0 < int(cursor) <= _MAX_SEQ
    ):
        raise InvalidArgument("page.page_token: not a token this service issued")
    return int(cursor)


def _account_and_currency(account: str, currency: str) -> None:
    if not is_known(account):
        raise InvalidArgument(
            "account: required, one of the chart of accounts (" + ", ".join(sorted(ACCOUNTS)) + ")"
        )
    if not _CURRENCY.fullmatch(currency):
        raise InvalidArgument("currency: an ISO 4217 code (three letters)")


def recompute_hash(stored: StoredEntry) -> str:
    """The hash a stored entry should carry (for tools and tests)."""
    body = canonical(stored.entry, seq=stored.seq, entry_id=stored.id, created_at=stored.created_at)
    return entry_hash(stored.prev_hash, body)
