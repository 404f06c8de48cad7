"""The journal: append hash-chained entries with their postings, keep balances in step, read
balances as of any point, statements, and the chain for verification.

Appends take the chain head's row lock first (an UPDATE of the one `chain_head` row), so
appenders are serialised: sequences are gapless and ascending, each entry's prev_hash is the
previous entry's hash. A batch append writes many entries in one transaction with a handful
of statements (bulk inserts, one balance update per account and currency).
"""

from __future__ import annotations

import json
import secrets
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.chain import GENESIS, canonical, entry_hash
from ..domain.entries import JournalEntry, Posting, StripeLink
from .tables import balances, bt_bookings, chain_head, entries, postings

__all__ = ["COPY_THRESHOLD", "Journal", "StatementRow", "StoredEntry"]

COPY_THRESHOLD = 50  # entries in one append from which PostgreSQL gets a COPY


@dataclass(frozen=True)
class StoredEntry:
    id: str
    seq: int
    entry: JournalEntry
    created_at: datetime
    prev_hash: str = ""
    hash: str = ""


@dataclass(frozen=True)
class StatementRow:
    seq: int
    entry_id: str
    created_at: datetime
    source_type: str
    source_id: str
    description: str
    amount: int


def new_entry_id() -> str:
    return f"je_{secrets.token_hex(12)}"


class Journal:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def exists(self, source_event_id: str) -> bool:
        stmt = select(entries.c.seq).where(entries.c.source_event_id == source_event_id)
        return (await self.session.execute(stmt)).first() is not None

    async def refs_of(self, source_id: str, source_type: str) -> dict[str, str] | None:
        """The refs of the first entry a source booked with that type (None: none yet)."""
        stmt = select(entries.c.refs).where(
            entries.c.source_id == source_id, entries.c.source_type == source_type
        )
        row = (await self.session.execute(stmt)).first()
        return None if row is None else dict(row.refs or {})

    async def is_booked(self, bt_id: str) -> bool:
        stmt = select(bt_bookings.c.bt_id).where(bt_bookings.c.bt_id == bt_id)
        return (await self.session.execute(stmt)).first() is not None

    async def append(self, entry: JournalEntry, now: datetime | None = None) -> str | None:
        """Append one entry; None when its source event (or its booking) is already there."""
        return (await self.append_many([entry], now))[0]

    async def append_many(
        self, batch: Sequence[JournalEntry], now: datetime | None = None
    ) -> list[str | None]:
        """Append entries in order, in the caller's transaction.

        Skipped (None): an entry whose source_event_id is already booked, or a `booking` of a
        balance transaction that already has one (an event and healing racing for it).
        """
        if not batch:
            return []
        s = self.session
        at = now or datetime.now(UTC)
        # Take the chain head's lock before reading anything the decision depends on.
        head = (
            await s.execute(
                update(chain_head)
                .where(chain_head.c.id == 1)
                .values(seq=chain_head.c.seq)
                .returning(chain_head.c.seq, chain_head.c.hash)
            )
        ).first()
        seq, prev = (int(head.seq), str(head.hash)) if head else (0, GENESIS)
        if head is None:
            await s.execute(insert(chain_head).values(id=1, seq=0, hash=GENESIS))
        seen = await self._existing([e.source_event_id for e in batch])
        booked = await self._booked(
            [e.link.balance_transaction_id for e in batch if e.link and e.link.role == "booking"]
        )
        rows: list[dict[str, Any]] = []
        legs: list[dict[str, Any]] = []
        bookings: list[dict[str, Any]] = []
        deltas: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        ids: list[str | None] = []
        for entry in batch:
            link = entry.link
            if entry.source_event_id in seen or (
                link is not None and _is_booking(link) and link.balance_transaction_id in booked
            ):
                ids.append(None)
                continue
            seen.add(entry.source_event_id)
            seq += 1
            entry_id = new_entry_id()
            digest = entry_hash(prev, canonical(entry, seq=seq, entry_id=entry_id, created_at=at))
            rows.append(
                {
                    "seq": seq,
                    "id": entry_id,
                    "source_event_id": entry.source_event_id,
                    "source_type": entry.source_type,
                    "source_id": entry.source_id,
                    "description": entry.description,
                    "refs": entry.refs,
                    "created_at": at,
                    "prev_hash": prev,
                    "hash": digest,
                    "bt_id": link.balance_transaction_id if link else None,
                    "link_role": link.role if link else None,
                    "bt_gross": link.gross if link else None,
                    "bt_fee": link.fee if link else None,
                    "bt_settled": link.settled if link else None,
                }
            )
            if link is not None and _is_booking(link):
                booked.add(link.balance_transaction_id)
                bookings.append({"bt_id": link.balance_transaction_id, "entry_seq": seq})
            for p in entry.postings:
                legs.append(
                    {
                        "entry_seq": seq,
                        "account": p.account,
                        "currency": p.currency,
                        "amount": p.amount,
                    }
                )
                d = deltas[(p.account, p.currency)]
                d[0] += p.amount
                d[1] += 1
            prev = digest
            ids.append(entry_id)
        if not rows:
            return ids
        if len(rows) >= COPY_THRESHOLD and s.get_bind().dialect.name == "postgresql":
            await self._copy(rows, legs, bookings)
        else:
            await s.execute(insert(entries), rows)
            await s.execute(insert(postings), legs)
            if bookings:
                await s.execute(insert(bt_bookings), bookings)
        await self._bump_all(deltas)
        await s.execute(update(chain_head).where(chain_head.c.id == 1).values(seq=seq, hash=prev))
        return ids

    async def _copy(
        self,
        rows: list[dict[str, Any]],
        legs: list[dict[str, Any]],
        bookings: list[dict[str, Any]],
    ) -> None:
        """PostgreSQL's COPY for big batches: the rows go over the wire in binary, without
        per-row statement parameters (several times faster than a multi-row INSERT)."""
        conn = await self.session.connection()
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        entry_cols = [c.name for c in entries.columns]
        records = [
            tuple(json.dumps(r["refs"]) if c == "refs" else r[c] for c in entry_cols) for r in rows
        ]
        await raw.copy_records_to_table("journal_entries", records=records, columns=entry_cols)
        await raw.copy_records_to_table(
            "postings",
            records=[(x["entry_seq"], x["account"], x["currency"], x["amount"]) for x in legs],
            columns=["entry_seq", "account", "currency", "amount"],
        )
        if bookings:
            await raw.copy_records_to_table(
                "bt_bookings",
                records=[(b["bt_id"], b["entry_seq"]) for b in bookings],
                columns=["bt_id", "entry_seq"],
            )

    async def _pg_any(self, sql: str, values: list[str]) -> set[str] | None:
        """`... = ANY($1)` with one array parameter on PostgreSQL (None elsewhere): a big
        IN list costs a bind parameter per value."""
        if self.session.get_bind().dialect.name != "postgresql" or len(values) < COPY_THRESHOLD:
            return None
        conn = await self.session.connection()
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        return {r[0] for r in await raw.fetch(sql, values)}

    async def _existing(self, event_ids: list[str]) -> set[str]:
        fast = await self._pg_any(
            "SELECT source_event_id FROM journal_entries WHERE source_event_id = ANY($1::text[])",
            event_ids,
        )
        if fast is not None:
            return fast
        found: set[str] = set()
        for i in range(0, len(event_ids), 500):
            chunk = event_ids[i : i + 500]
            stmt = select(entries.c.source_event_id).where(entries.c.source_event_id.in_(chunk))
            found.update(r[0] for r in (await self.session.execute(stmt)).all())
        return found

    async def _booked(self, bt_ids: list[str]) -> set[str]:
        found: set[str] = set()
        if not bt_ids:
            return found
        fast = await self._pg_any(
            "SELECT bt_id FROM bt_bookings WHERE bt_id = ANY($1::text[])", bt_ids
        )
        if fast is not None:
            return fast
        for i in range(0, len(bt_ids), 500):
            chunk = bt_ids[i : i + 500]
            stmt = select(bt_bookings.c.bt_id).where(bt_bookings.c.bt_id.in_(chunk))
            found.update(r[0] for r in (await self.session.execute(stmt)).all())
        return found

    async def _bump_all(self, deltas: dict[tuple[str, str], list[int]]) -> None:
        """Every touched (account, currency) in one upsert statement."""
        dialect = self.session.get_bind().dialect.name
        if dialect not in ("postgresql", "sqlite"):
            for (account, currency), (amount, count) in deltas.items():
                await self._bump(account, currency, amount, count)
            return
        make = pg_insert if dialect == "postgresql" else sqlite_insert
        stmt = make(balances)
        stmt = stmt.on_conflict_do_update(
            index_elements=[balances.c.account, balances.c.currency],
            set_={
                "balance": balances.c.balance + stmt.excluded.balance,
                "entry_count": balances.c.entry_count + stmt.excluded.entry_count,
            },
        )
        await self.session.execute(
            stmt,
            [
                {"account": a, "currency": c, "balance": amount, "entry_count": count}
                for (a, c), (amount, count) in sorted(deltas.items())
            ],
        )

    async def _bump(self, account: str, currency: str, amount: int, count: int) -> None:
        key = and_(balances.c.account == account, balances.c.currency == currency)
        result = await self.session.execute(
            update(balances)
            .where(key)
            .values(balance=balances.c.balance + amount, entry_count=balances.c.entry_count + count)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            await self.session.execute(
                insert(balances).values(
                    account=account, currency=currency, balance=amount, entry_count=count
                )
            )

    # -- reading -------------------------------------------------------------------------------
    async def balance(self, account: str, currency: str) -> tuple[int, int]:
        stmt = select(balances.c.balance, balances.c.entry_count).where(
            balances.c.account == account, balances.c.currency == currency
        )
        row = (await self.session.execute(stmt)).first()
        return (int(row.balance), int(row.entry_count)) if row else (0, 0)

    async def balance_as_of(
        self,
        account: str,
        currency: str,
        *,
        at: datetime | None = None,
        seq: int | None = None,
        before: bool = False,
    ) -> tuple[int, int]:
        """The balance after every entry up to `seq` (inclusive) or booked at or before `at`
        (strictly before with `before=True`), straight from the postings."""
        stmt = (
            select(func.coalesce(func.sum(postings.c.amount), 0), func.count())
            .select_from(postings.join(entries, entries.c.seq == postings.c.entry_seq))
            .where(postings.c.account == account, postings.c.currency == currency)
        )
        if seq is not None:
            stmt = stmt.where(entries.c.seq <= seq)
        elif at is not None:
            stmt = stmt.where(entries.c.created_at < at if before else entries.c.created_at <= at)
        row = (await self.session.execute(stmt)).one()
        return int(row[0]), int(row[1])

    async def statement(
        self,
        account: str,
        currency: str,
        *,
        since: datetime | None,
        until: datetime | None,
        after_seq: int,
        size: int,
    ) -> tuple[list[StatementRow], bool]:
        stmt = (
            select(
                entries.c.seq,
                entries.c.id,
                entries.c.created_at,
                entries.c.source_type,
                entries.c.source_id,
                entries.c.description,
                func.sum(postings.c.amount).label("amount"),
            )
            .select_from(postings.join(entries, entries.c.seq == postings.c.entry_seq))
            .where(
                postings.c.account == account,
                postings.c.currency == currency,
                entries.c.seq > after_seq,
            )
            .group_by(
                entries.c.seq,
                entries.c.id,
                entries.c.created_at,
                entries.c.source_type,
                entries.c.source_id,
                entries.c.description,
            )
            .order_by(entries.c.seq)
            .limit(size + 1)
        )
        if since is not None:
            stmt = stmt.where(entries.c.created_at >= since)
        if until is not None:
            stmt = stmt.where(entries.c.created_at < until)
        rows = (await self.session.execute(stmt)).all()
        out = [
            StatementRow(
                int(r.seq), r.id, r.created_at, r.source_type, r.source_id, r.description,
                int(r.amount),
            )
            for r in rows[:size]
        ]  # fmt: skip
        return out, len(rows) > size

    async def period_totals(
        self,
        account: str,
        currency: str,
        *,
        since: datetime | None,
        until: datetime | None,
        upto_seq: int | None = None,
    ) -> tuple[int, int]:
        """(debits, credits) of an account in a period (and up to an entry); credits negative."""
        stmt = (
            select(
                func.coalesce(func.sum(postings.c.amount).filter(postings.c.amount > 0), 0),
                func.coalesce(func.sum(postings.c.amount).filter(postings.c.amount < 0), 0),
            )
            .select_from(postings.join(entries, entries.c.seq == postings.c.entry_seq))
            .where(postings.c.account == account, postings.c.currency == currency)
        )
        if since is not None:
            stmt = stmt.where(entries.c.created_at >= since)
        if until is not None:
            stmt = stmt.where(entries.c.created_at < until)
        if upto_seq is not None:
            stmt = stmt.where(entries.c.seq <= upto_seq)
        row = (await self.session.execute(stmt)).one()
        return int(row[0]), int(row[1])

    async def get(self, entry_id: str) -> StoredEntry | None:
        row = (await self.session.execute(select(entries).where(entries.c.id == entry_id))).first()
        if row is None:
            return None
        return (await self._load([row]))[0]

    async def page(
        self, *, account: str, source_id: str, size: int, after_seq: int | None
    ) -> tuple[list[StoredEntry], bool]:
        stmt = select(entries)
        if source_id:
            stmt = stmt.where(entries.c.source_id == source_id)
        if account:
            touching = select(postings.c.entry_seq).where(postings.c.account == account)
            stmt = stmt.where(entries.c.seq.in_(touching))
        if after_seq is not None:
            stmt = stmt.where(entries.c.seq < after_seq)
        stmt = stmt.order_by(entries.c.seq.desc()).limit(size + 1)
        rows = (await self.session.execute(stmt)).all()
        return await self._load(rows[:size]), len(rows) > size

    async def totals(self) -> dict[tuple[str, str], int]:
        """Sum of postings per (account, currency), straight from the postings."""
        stmt = select(
            postings.c.account, postings.c.currency, func.sum(postings.c.amount)
        ).group_by(postings.c.account, postings.c.currency)
        return {(a, c): int(s) for a, c, s in (await self.session.execute(stmt)).all()}

    async def stored_balances(self) -> dict[tuple[str, str], int]:
        rows = (await self.session.execute(select(balances))).all()
        return {(r.account, r.currency): int(r.balance) for r in rows}

    async def head(self) -> tuple[int, str]:
        row = (await self.session.execute(select(chain_head.c.seq, chain_head.c.hash))).first()
        return (int(row.seq), str(row.hash)) if row else (0, GENESIS)

    async def iter_chain(self, batch: int = 2000) -> AsyncIterator[list[StoredEntry]]:
        """Every stored entry in sequence order, in batches (for verification)."""
        after = 0
        while True:
            stmt = select(entries).where(entries.c.seq > after).order_by(entries.c.seq).limit(batch)
            rows = (await self.session.execute(stmt)).all()
            if not rows:
                return
            yield await self._load(rows)
            after = rows[-1].seq

    async def _load(self, rows: Sequence[Any]) -> list[StoredEntry]:
        if not rows:
            return []
        seqs = [r.seq for r in rows]
        legs: dict[int, list[Posting]] = {s: [] for s in seqs}
        stmt = (
            select(postings)
            .where(postings.c.entry_seq >= min(seqs), postings.c.entry_seq <= max(seqs))
            .order_by(postings.c.id)
        )
        for p in (await self.session.execute(stmt)).all():
            if p.entry_seq in legs:
                legs[p.entry_seq].append(_unchecked_posting(p.account, int(p.amount), p.currency))
        out: list[StoredEntry] = []
        for r in rows:
            link = None
            if r.bt_id is not None and r.link_role is not None:
                link = StripeLink(
                    r.bt_id, r.link_role, int(r.bt_gross or 0), int(r.bt_fee or 0),
                    int(r.bt_settled or 0),
                )  # fmt: skip
            out.append(
                StoredEntry(
                    id=r.id,
                    seq=r.seq,
                    entry=_unchecked_entry(r, tuple(legs[r.seq]), link),
                    created_at=r.created_at,
                    prev_hash=r.prev_hash or "",
                    hash=r.hash or "",
                )
            )
        return out


def _is_booking(link: StripeLink | None) -> bool:
    return link is not None and link.role == "booking"


def _unchecked_posting(account: str, amount: int, currency: str) -> Posting:
    posting = object.__new__(Posting)
    object.__setattr__(posting, "account", account)
    object.__setattr__(posting, "amount", amount)
    object.__setattr__(posting, "currency", currency)
    return posting


def _unchecked_entry(r: Any, legs: tuple[Posting, ...], link: StripeLink | None) -> JournalEntry:
    """Rebuild a stored entry without re-validating it: a tampered row must still load so
    that verification can report it instead of failing to read it."""
    entry = object.__new__(JournalEntry)
    for name, value in (
        ("source_event_id", r.source_event_id),
        ("source_type", r.source_type),
        ("source_id", r.source_id),
        ("description", r.description),
        ("postings", legs),
        ("refs", dict(r.refs or {})),
        ("link", link),
    ):
        object.__setattr__(entry, name, value)
    return entry
