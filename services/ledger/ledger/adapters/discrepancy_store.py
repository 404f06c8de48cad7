"""Discrepancies and their audit trail, in the caller's transaction.

A discrepancy is stored once under its stable key (kind + subject + what the ledger had);
every step taken on it (found, healed, queued, resolved) is a row of `discrepancy_audit`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.matching import Finding
from .tables import discrepancies, discrepancy_audit

__all__ = ["DiscrepancyStore", "StoredDiscrepancy"]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class StoredDiscrepancy:
    id: str
    kind: str
    status: str
    subject: str
    evidence: dict[str, Any]


def _stored(row: Any) -> StoredDiscrepancy:
    return StoredDiscrepancy(row.id, row.kind, row.status, row.subject, dict(row.evidence or {}))


class DiscrepancyStore:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_key(self, key: str) -> StoredDiscrepancy | None:
        row = (
            await self.session.execute(select(discrepancies).where(discrepancies.c.key == key))
        ).first()
        return None if row is None else _stored(row)

    async def get(self, disc_id: str) -> StoredDiscrepancy | None:
        row = (
            await self.session.execute(select(discrepancies).where(discrepancies.c.id == disc_id))
        ).first()
        return None if row is None else _stored(row)

    async def columns(self, disc_id: str) -> dict[str, Any] | None:
        """Every column of one discrepancy (for the API's answer); None: no such one."""
        found = (
            await self.session.execute(select(discrepancies).where(discrepancies.c.id == disc_id))
        ).first()
        return None if found is None else dict(found._mapping)

    async def add(self, f: Finding, run_id: str, evidence: dict[str, str]) -> str:
        """A new, open discrepancy found by `run_id` (audited as found)."""
        disc_id = f"dsc_{secrets.token_hex(10)}"
        now = _now()
        await self.session.execute(
            insert(discrepancies).values(
                id=disc_id, key=f.key, kind=f.kind, status="open", subject=f.subject,
                currency=f.currency, amount=f.amount, evidence=evidence,
                first_run_id=run_id, last_run_id=run_id, created_at=now, updated_at=now,
            )
        )  # fmt: skip
        await self.audit(disc_id, "reconciler", "found", {"run": run_id, **evidence})
        return disc_id

    async def found_again(self, disc_id: str, run_id: str, evidence: dict[str, str]) -> None:
        """A later run found it again: open, with the newest evidence."""
        await self.session.execute(
            update(discrepancies)
            .where(discrepancies.c.id == disc_id)
            .values(last_run_id=run_id, updated_at=_now(), status="open", evidence=evidence)
        )

    async def healed(self, disc_id: str, entry_id: str, actor: str, run_id: str) -> None:
        await self.session.execute(
            update(discrepancies)
            .where(discrepancies.c.id == disc_id)
            .values(status="healed", adjusting_entry_id=entry_id)
        )
        await self.audit(disc_id, actor, "healed", {"run": run_id, "entry": entry_id})

    async def resolved_meanwhile(self, disc_id: str, run_id: str, reason: str) -> None:
        """Nothing left to correct (its own event booked it first)."""
        await self.session.execute(
            update(discrepancies)
            .where(discrepancies.c.id == disc_id)
            .values(status="resolved", resolved_by="reconciler", resolution_reason=reason)
        )
        await self.audit(disc_id, "reconciler", "resolved", {"run": run_id})

    async def settle(
        self,
        disc_id: str,
        *,
        status: str,
        actor: str,
        reason: str,
        entry_id: str | None,
        detail: dict[str, Any],
    ) -> None:
        """A human's decision (audited with its detail)."""
        values: dict[str, Any] = {
            "status": status,
            "resolved_by": actor,
            "resolution_reason": reason,
            "updated_at": _now(),
        }
        if entry_id is not None:
            values["adjusting_entry_id"] = entry_id
        await self.session.execute(
            update(discrepancies).where(discrepancies.c.id == disc_id).values(values)
        )
        await self.audit(disc_id, actor, "resolved", detail)

    async def page(
        self, *, kind: str, status: str, run_id: str, after: str, size: int
    ) -> tuple[list[dict[str, Any]], bool]:
        """Discrepancies by id after `after`, filtered; and whether more follow."""
        stmt = select(discrepancies)
        if kind:
            stmt = stmt.where(discrepancies.c.kind == kind)
        if status:
            stmt = stmt.where(discrepancies.c.status == status)
        if run_id:
            stmt = stmt.where(discrepancies.c.last_run_id == run_id)
        if after:
            stmt = stmt.where(discrepancies.c.id > after)
        stmt = stmt.order_by(discrepancies.c.id).limit(size + 1)
        rows = [dict(r._mapping) for r in (await self.session.execute(stmt)).all()]
        return rows[:size], len(rows) > size

    async def trail(self, disc_id: str) -> list[dict[str, Any]]:
        """Every audited step of one discrepancy, oldest first."""
        stmt = (
            select(discrepancy_audit)
            .where(discrepancy_audit.c.discrepancy_id == disc_id)
            .order_by(discrepancy_audit.c.id)
        )
        return [dict(r._mapping) for r in (await self.session.execute(stmt)).all()]

    async def audit(self, disc_id: str, actor: str, action: str, detail: dict[str, Any]) -> None:
        await self.session.execute(
            insert(discrepancy_audit).values(
                discrepancy_id=disc_id, at=_now(), actor=actor, action=action, detail=detail
            )
        )
