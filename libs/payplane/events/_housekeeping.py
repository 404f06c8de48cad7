from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ._inbox import Inbox
from ._outbox import Outbox

__all__ = ["housekeep_once", "run_housekeeping"]

log = logging.getLogger("payplane.events.housekeeping")

# Sent outbox rows matter only inside JetStream's duplicate window (minutes); a day leaves
# room to look at what went out. Inbox ids must outlive every redelivery: a stream keeps
# messages for 7 days, so 30 days is well beyond any message that could come back.
KEEP_SENT = timedelta(days=1)
KEEP_PROCESSED = timedelta(days=30)


async def housekeep_once(
    sessions: async_sessionmaker[AsyncSession],
    *,
    outbox: Outbox | None = None,
    inbox: Inbox | None = None,
    keep_sent: timedelta = KEEP_SENT,
    keep_processed: timedelta = KEEP_PROCESSED,
) -> tuple[int, int]:
    """Delete sent outbox rows and old inbox ids; returns how many of each went."""
    sent = processed = 0
    async with sessions.begin() as session:
        if outbox is not None:
            sent = await outbox.purge_sent(session, keep_sent)
        if inbox is not None:
            processed = await inbox.purge(session, keep_processed)
    return sent, processed


async def run_housekeeping(
    sessions: async_sessionmaker[AsyncSession],
    *,
    outbox: Outbox | None = None,
    inbox: Inbox | None = None,
    interval_s: float = 3600.0,
) -> None:
    """Purge on a schedule until cancelled; a failed pass is logged and retried next time."""
    while True:
        try:
            sent, processed = await housekeep_once(sessions, outbox=outbox, inbox=inbox)
            if sent or processed:
                log.info("purged %d sent outbox rows and %d inbox ids", sent, processed)
        except Exception:
            log.exception("outbox/inbox housekeeping failed")
        await asyncio.sleep(interval_s)
