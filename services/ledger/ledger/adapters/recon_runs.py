"""Reconciliation runs: recorded when asked for, completed with their summary or failed with
their error, in the caller's transaction."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from .tables import recon_runs

__all__ = ["RunStore"]


def _now() -> datetime:
    return datetime.now(UTC)


class RunStore:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, mode: str, since: int | None, until: int | None) -> str:
        run_id = f"rr_{secrets.token_hex(10)}"
        await self.session.execute(
            insert(recon_runs).values(
                id=run_id, mode=mode, status="running", since=since, until=until,
                started_at=_now(), summary={},
            )
        )  # fmt: skip
        return run_id

    async def get(self, run_id: str) -> dict[str, Any] | None:
        row = (
            await self.session.execute(select(recon_runs).where(recon_runs.c.id == run_id))
        ).first()
        return None if row is None else dict(row._mapping)

    async def completed(self, run_id: str, summary: dict[str, Any]) -> None:
        await self.session.execute(
            update(recon_runs)
            .where(recon_runs.c.id == run_id)
            .values(status="completed", finished_at=_now(), summary=summary)
        )

    async def failed(self, run_id: str, error: str) -> None:
        await self.session.execute(
            update(recon_runs)
            .where(recon_runs.c.id == run_id)
            .values(status="failed", finished_at=_now(), error=error)
        )

    async def last_closing_seq(self) -> int:
        """The journal sequence the last completed run closed at (0: none yet)."""
        prev = (
            await self.session.execute(
                select(recon_runs.c.summary)
                .where(recon_runs.c.status == "completed")
                .order_by(recon_runs.c.finished_at.desc())
                .limit(1)
            )
        ).first()
        return int((prev.summary or {}).get("closing_seq", 0)) if prev else 0
