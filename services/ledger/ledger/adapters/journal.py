"""The journal: append entries with their postings and keep balances in step."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.entries import JournalEntry, Posting
from .tables import balances, entries, postings

__all__ = ["Journal", "StoredEntry"]


@dataclass(frozen=True)
class StoredEntry:
    id: str
    seq: int
    entry: JournalEntry
    created_at: datetime


class Journal:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def exists(self, source_event_id: str) -> bool:
        stmt = select(entries.c.seq).where(entries.c.source_event_id == source_event_id)
        return (await self.session.execute(stmt)).first() is not None

    async def append(self, entry: JournalEntry, now: datetime | None = None) -> str:
        entry_id = f"je_{secrets.token_hex(12)}"
        result = await self.session.execute(
            insert(entries)
            .values(
                id=entry_id,
                source_event_id=entry.source_event_id,
                source_type=entry.source_type,
                source_id=entry.source_id,
                description=entry.description,
                refs=entry.refs,
                created_at=now or datetime.now(UTC),
            )
            .returning(entries.c.seq)
        )
        seq = result.scalar_one()
        await self.session.execute(
            insert(postings),
            [
                {"entry_seq": seq, "account": p.account, "currency": p.currency, "amount": p.amount}
                for p in entry.postings
            ],
        )
        for p in entry.postings:
            await self._bump(p)
        return entry_id

    async def _bump(self, p: Posting) -> None:
        key = and_(balances.c.account == p.account, balances.c.currency == p.currency)
        result = await self.session.execute(
            update(balances)
            .where(key)
            .values(balance=balances.c.balance + p.amount, entry_count=balances.c.entry_count + 1)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            await self.session.execute(
                insert(balances).values(
                    account=p.account, currency=p.currency, balance=p.amount, entry_count=1
                )
            )

    async def balance(self, account: str, currency: str) -> tuple[int, int]:
        stmt = select(balances.c.balance, balances.c.entry_count).where(
            balances.c.account == account, balances.c.currency == currency
        )
        row = (await self.session.execute(stmt)).first()
        return (int(row.balance), int(row.entry_count)) if row else (0, 0)

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

    async def _load(self, rows: Sequence[Any]) -> list[StoredEntry]:
        if not rows:
            return []
        seqs = [r.seq for r in rows]
        legs: dict[int, list[Posting]] = {s: [] for s in seqs}
        stmt = select(postings).where(postings.c.entry_seq.in_(seqs)).order_by(postings.c.id)
        for p in (await self.session.execute(stmt)).all():
            legs[p.entry_seq].append(Posting(p.account, int(p.amount), p.currency))
        return [
            StoredEntry(
                id=r.id,
                seq=r.seq,
                entry=JournalEntry(
                    source_event_id=r.source_event_id,
                    source_type=r.source_type,
                    source_id=r.source_id,
                    description=r.description,
                    postings=tuple(legs[r.seq]),
                    refs=dict(r.refs or {}),
                ),
                created_at=r.created_at,
            )
            for r in rows
        ]
