from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from opentelemetry import trace
from opentelemetry.trace import SpanKind, TracerProvider
from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from payplane.events.v1.envelope_pb2 import Envelope

from ._publish import producer_attributes, trace_headers

__all__ = ["Outbox", "ParkedEvent"]


@dataclass(frozen=True)
class ParkedEvent:
    """An outbox row the relay set aside (see `Relay`): what an operator needs to decide."""

    event_id: str
    subject: str
    envelope_bytes: int
    attempts: int
    last_error: str
    parked_at: datetime
    created_at: datetime


class Outbox:
    """Writes events into the caller's transaction; the relay publishes them later."""

    def __init__(self, table: Table, *, tracer_provider: TracerProvider | None = None) -> None:
        self.table = table
        self._tracer = trace.get_tracer("payplane.events", tracer_provider=tracer_provider)

    async def add(self, session: AsyncSession, subject: str, envelope: Envelope) -> None:
        """Queue `envelope` for `subject`. Commits with the caller's state change, or not at all.

        The current trace context is stored with it so the consumer's span joins this trace.
        """
        if not envelope.event_id:
            raise ValueError("envelope.event_id is required (it is the dedupe key)")
        # The PRODUCER span is the parent the consumer's span will join, across the relay.
        with self._tracer.start_as_current_span(
            f"{subject} publish",
            kind=SpanKind.PRODUCER,
            attributes=producer_attributes(subject, envelope.event_id),
        ):
            headers = trace_headers()
        await session.execute(
            insert(self.table).values(
                event_id=envelope.event_id,
                subject=subject,
                envelope=envelope.SerializeToString(),
                headers=headers,
                created_at=datetime.now(UTC),
            )
        )

    async def purge_sent(self, session: AsyncSession, older_than: timedelta) -> int:
        """Delete rows sent before now - older_than (keep it well above the duplicate window)."""
        cutoff = datetime.now(UTC) - older_than
        result = await session.execute(
            delete(self.table).where(
                self.table.c.sent_at.is_not(None), self.table.c.sent_at < cutoff
            )
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def count_parked(self, session: AsyncSession) -> int:
        """Rows the relay set aside; anything above zero wants an operator (alert on it)."""
        t = self.table
        q = select(func.count()).select_from(t).where(t.c.parked_at.is_not(None))
        return int((await session.execute(q.where(t.c.sent_at.is_(None)))).scalar_one())

    async def parked(self, session: AsyncSession, limit: int = 100) -> list[ParkedEvent]:
        """The parked rows, oldest first."""
        t = self.table
        rows = await session.execute(
            select(
                t.c.event_id,
                t.c.subject,
                func.length(t.c.envelope).label("size"),
                t.c.attempts,
                t.c.last_error,
                t.c.parked_at,
                t.c.created_at,
            )
            .where(t.c.parked_at.is_not(None), t.c.sent_at.is_(None))
            .order_by(t.c.id)
            .limit(limit)
        )
        return [
            ParkedEvent(
                event_id=r.event_id,
                subject=r.subject,
                envelope_bytes=int(r.size or 0),
                attempts=int(r.attempts or 0),
                last_error=r.last_error or "",
                parked_at=r.parked_at,
                created_at=r.created_at,
            )
            for r in rows
        ]

    async def unpark(self, session: AsyncSession, event_ids: Sequence[str] | None = None) -> int:
        """Put parked rows (these, or all) back in line with a fresh attempt count; returns how
        many. Do it once the cause is fixed (the stream exists, the server's max payload was
        raised), or the relay parks them again."""
        t = self.table
        stmt = update(t).where(t.c.parked_at.is_not(None), t.c.sent_at.is_(None))
        if event_ids is not None:
            stmt = stmt.where(t.c.event_id.in_(list(event_ids)))
        result = await session.execute(
            stmt.values(parked_at=None, attempts=0, claim_token=None, claimed_until=None)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
