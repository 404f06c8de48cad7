"""Reading reconciliation state: runs and the discrepancy queue."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from payplane.grpckit.errors import InvalidArgument

from ..adapters.tables import discrepancies, discrepancy_audit, recon_runs

__all__ = ["Queries"]


class Queries:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def run(self, run_id: str) -> dict[str, Any] | None:
        async with self.sessions() as session:
            row = (
                await session.execute(select(recon_runs).where(recon_runs.c.id == run_id))
            ).first()
        return None if row is None else dict(row._mapping)

    async def discrepancies(
        self, *, kind: str, status: str, run_id: str, page_size: int, page_token: str
    ) -> tuple[list[dict[str, Any]], str]:
        size = min(max(page_size or 50, 1), 500)
        stmt = select(discrepancies)
        if kind:
            stmt = stmt.where(discrepancies.c.kind == kind)
        if status:
            stmt = stmt.where(discrepancies.c.status == status)
        if run_id:
            stmt = stmt.where(discrepancies.c.last_run_id == run_id)
        if page_token:
            if not page_token.startswith("dsc_"):
                raise InvalidArgument("page.page_token: not a token this service issued")
            stmt = stmt.where(discrepancies.c.id > page_token)
        stmt = stmt.order_by(discrepancies.c.id).limit(size + 1)
        async with self.sessions() as session:
            rows = [dict(r._mapping) for r in (await session.execute(stmt)).all()]
        more = len(rows) > size
        rows = rows[:size]
        return rows, rows[-1]["id"] if more and rows else ""

    async def discrepancy(self, disc_id: str) -> dict[str, Any] | None:
        stmt = select(discrepancies).where(discrepancies.c.id == disc_id)
        async with self.sessions() as session:
            row = (await session.execute(stmt)).first()
        return None if row is None else dict(row._mapping)

    async def audit(self, disc_id: str) -> list[dict[str, Any]]:
        stmt = (
            select(discrepancy_audit)
            .where(discrepancy_audit.c.discrepancy_id == disc_id)
            .order_by(discrepancy_audit.c.id)
        )
        async with self.sessions() as session:
            return [dict(r._mapping) for r in (await session.execute(stmt)).all()]
