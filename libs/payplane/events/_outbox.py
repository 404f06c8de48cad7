from __future__ import annotations

from datetime import UTC, datetime, timedelta

from opentelemetry import trace
from opentelemetry.trace import SpanKind, TracerProvider
from sqlalchemy import Table, delete, insert
from sqlalchemy.ext.asyncio import AsyncSession

from payplane.events.v1.envelope_pb2 import Envelope

from ._publish import trace_headers

__all__ = ["Outbox"]


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
            attributes={
                "messaging.system": "nats",
                "messaging.operation.type": "publish",
                "messaging.destination.name": subject,
                "messaging.message.id": envelope.event_id,
            },
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
