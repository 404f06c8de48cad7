"""Reading reconciliation state: runs and the discrepancy queue."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from payplane.grpckit.errors import InvalidArgument

from ..adapters.discrepancy_store import DiscrepancyStore
from ..adapters.recon_runs import RunStore

__all__ = ["Queries"]


class Queries:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def run(self, run_id: str) -> dict[str, Any] | None:
        async with self.sessions() as session:
            return await RunStore(session).get(run_id)

    async def discrepancies(
        self, *, kind: str, status: str, run_id: str, page_size: int, page_token: str
    ) -> tuple[list[dict[str, Any]], str]:
        size = min(max(page_size or 50, 1), 500)
        if page_token and not page_token.startswith("dsc_"):
            raise InvalidArgument("page.page_token: not a token this service issued")
        async with self.sessions() as session:
            rows, more = await DiscrepancyStore(session).page(
                kind=kind, status=status, run_id=run_id, after=page_token, size=size
            )
        return rows, rows[-1]["id"] if more and rows else ""

    async def discrepancy(self, disc_id: str) -> dict[str, Any] | None:
        async with self.sessions() as session:
            return await DiscrepancyStore(session).columns(disc_id)

    async def audit(self, disc_id: str) -> list[dict[str, Any]]:
        async with self.sessions() as session:
            return await DiscrepancyStore(session).trail(disc_id)
