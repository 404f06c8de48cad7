from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Table, delete, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["Inbox"]


class Inbox:
    """Records which events a consumer has applied, in the same transaction as the effect."""

    def __init__(self, table: Table) -> None:
        self.table = table

    async def claim(self, session: AsyncSession, consumer: str, event_id: str) -> bool:
        """True the first time (apply the effect, then commit); False if already applied.

        A concurrent claim of the same id waits on the primary key until the first
        transaction ends: it gets False after a commit, True after a rollback.
        """
        values = {
            "consumer": consumer,
            "event_id": event_id,
            "processed_at": datetime.now(UTC),
        }
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            pg = postgresql.insert(self.table).values(**values).on_conflict_do_nothing()
            result = await session.execute(pg)
        elif dialect == "sqlite":
            lite = sqlite.insert(self.table).values(**values).on_conflict_do_nothing()
            result = await session.execute(lite)
        else:
            # Portable fallback: a savepoint keeps the caller's transaction usable.
            try:
                async with session.begin_nested():
                    await session.execute(insert(self.table).values(**values))
            except IntegrityError:
                return False
            return True
        return int(result.rowcount) == 1  # type: ignore[attr-defined]

    async def purge(self, session: AsyncSession, older_than: timedelta) -> int:
        """Forget ids processed before now - older_than (longer than any redelivery horizon)."""
        cutoff = datetime.now(UTC) - older_than
        result = await session.execute(delete(self.table).where(self.table.c.processed_at < cutoff))
        return int(result.rowcount)  # type: ignore[attr-defined]
