from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ._consumer import Consumer
from ._deadletters import DLQ_STREAM_PREFIX, dead_letter_counts
from ._outbox import Outbox

__all__ = ["EventsReport", "EventsWatch"]

log = logging.getLogger("payplane.events.watch")


@dataclass(frozen=True)
class EventsReport:
    """What in a service's event flow waits for an operator, or for a dependency."""

    parked: int | None = None  # outbox rows set aside (None: no outbox, or not known)
    dead_letters: dict[str, int] = field(default_factory=dict)  # per dead-letter stream
    held: int = 0  # messages the consumers hold for a retry (a dependency is away)

    @property
    def needs_operator(self) -> bool:
        return bool(self.parked) or any(self.dead_letters.values())


class EventsWatch:
    """Counts parked outbox rows, dead letters and held messages every `interval_s`; logs at
    ERROR when parked rows or dead letters appear or grow. `latest` (and `check()`) is what
    health, metrics and the operator CLI read. A count that cannot be read (NATS or the
    database away) keeps its last value; the health monitor reports the outage itself."""

    def __init__(
        self,
        js: JetStreamContext,
        *,
        sessions: async_sessionmaker[AsyncSession] | None = None,
        outbox: Outbox | None = None,
        consumers: Sequence[Consumer] = (),
        interval_s: float = 60.0,
        dlq_prefix: str = DLQ_STREAM_PREFIX,
    ) -> None:
        self._js = js
        self._sessions = sessions
        self._outbox = outbox
        self._consumers = list(consumers)
        self._interval_s = interval_s
        self._prefix = dlq_prefix
        self.latest = EventsReport()

    async def check(self) -> EventsReport:
        parked = self.latest.parked
        if self._sessions is not None and self._outbox is not None:
            try:
                async with self._sessions() as session:
                    parked = await self._outbox.count_parked(session)
            except Exception as exc:
                log.warning("could not count parked outbox rows: %r", exc)
        dead = self.latest.dead_letters
        try:
            dead = await dead_letter_counts(self._js, self._prefix)
        except Exception as exc:
            log.warning("could not count dead letters: %r", exc)
        report = EventsReport(parked, dead, sum(c.held for c in self._consumers))
        self._alert(self.latest, report)
        self.latest = report
        return report

    def _alert(self, before: EventsReport, now: EventsReport) -> None:
        if (now.parked or 0) > (before.parked or 0):
            log.error("%d outbox event(s) parked: not published until requeued", now.parked)
        for stream, count in now.dead_letters.items():
            if count > before.dead_letters.get(stream, 0):
                log.error("%d message(s) in dead-letter stream %s", count, stream)
        if before.needs_operator and not now.needs_operator:
            log.info("no parked outbox events and no dead letters any more")

    async def run(self) -> None:
        """Check every `interval_s` until cancelled."""
        while True:
            await self.check()
            await asyncio.sleep(self._interval_s)
