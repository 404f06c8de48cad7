from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from nats.js import JetStreamContext
from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ._errors import PublishError
from ._publish import publish_bytes

__all__ = ["Relay"]

log = logging.getLogger("payplane.events.relay")


class Relay:
    """Publishes unsent outbox rows to JetStream in id order; marks them sent after the ack.

    A crash between the PubAck and the mark re-publishes on restart; the stream's duplicate
    window drops the copy because `Nats-Msg-Id` is the event id. On PostgreSQL the batch is
    locked with `FOR UPDATE SKIP LOCKED`, so several relays share the work without fighting
    (order then holds per relay, not globally: consumers must be order-tolerant anyway).
    On a publish failure the rows acknowledged so far are marked and the rest wait, in order.
    """

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        table: Table,
        js: JetStreamContext,
        batch_size: int = 100,
        poll_interval: float = 0.2,
        *,
        max_backoff_s: float = 5.0,
    ) -> None:
        self._session_factory = session_factory
        self._table = table
        self._js = js
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._max_backoff_s = max_backoff_s
        self._stopping = asyncio.Event()

    async def run_once(self) -> int:
        """Publish one batch; returns how many rows were acknowledged and marked sent.

        Raises PublishError after marking whatever was acknowledged before the failure.
        """
        t = self._table
        async with self._session_factory() as session, session.begin():
            stmt = (
                select(t.c.id, t.c.event_id, t.c.subject, t.c.envelope, t.c.headers)
                .where(t.c.sent_at.is_(None))
                .order_by(t.c.id)
                .limit(self._batch_size)
            )
            if session.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            rows = (await session.execute(stmt)).all()
            acked: list[int] = []
            failure: PublishError | None = None
            for row in rows:
                try:
                    await publish_bytes(
                        self._js,
                        row.subject,
                        row.envelope,
                        msg_id=row.event_id,
                        headers=_str_headers(row.headers),
                    )
                except PublishError as exc:
                    failure = exc  # keep order: nothing after a failed row goes out first
                    break
                acked.append(row.id)
            if acked:
                await session.execute(
                    update(t).where(t.c.id.in_(acked)).values(sent_at=datetime.now(UTC))
                )
        if failure is not None:
            raise failure
        return len(acked)

    async def run(self) -> None:
        """Loop until `stop()`: drain full batches back to back, poll when idle, back off
        (bounded, doubling) while JetStream or the database is failing."""
        self._stopping.clear()
        backoff = self._poll_interval
        while not self._stopping.is_set():
            try:
                sent = await self.run_once()
            except Exception as exc:  # a relay must outlive NATS and DB outages
                log.warning("outbox relay batch failed: %r; retrying in %.1fs", exc, backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff_s)
                continue
            backoff = self._poll_interval
            if sent < self._batch_size:
                await self._sleep(self._poll_interval)

    def stop(self) -> None:
        self._stopping.set()

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            pass


def _str_headers(raw: object) -> dict[str, str]:
    if not isinstance(raw, dict):
        return {}
    return {str(k): str(v) for k, v in raw.items()}
