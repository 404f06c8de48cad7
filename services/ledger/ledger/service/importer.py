"""Importing Stripe's view: balance transactions and payouts, incrementally and resumably.

Balance transactions: a cursor on (created, id). Each import opens a window at the cursor's
`created` (inclusive: transactions of the same second may have arrived since) and pages
through it newest first with `starting_after`; each page is upserted and the page position
saved in the same transaction, so a crash resumes at the next page. When the window is done
the cursor moves to the newest (created, id) seen. Pending transactions are re-read from the
oldest still pending, so their settlement is seen. A backfill imports a [since, until) window
under its own cursor. Payouts: the same windowing, plus a refresh of payouts still moving,
and for each automatic payout that Stripe has reconciled (or that failed) the list of the
balance transactions it contains (`GET /v1/balance_transactions?payout=`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..adapters.stripe_mirror import Cursor, StripeMirror, bt_row, payout_row
from ..adapters.stripe_reader import Page, StripeReader

__all__ = ["ImportResult", "Importer"]

log = logging.getLogger("ledger.import")
BT_CURSOR = "balance_transactions"
PAYOUT_CURSOR = "payouts"


@dataclass
class ImportResult:
    balance_transactions: int = 0
    payouts: int = 0
    payout_contents: int = 0


class Importer:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        reader: StripeReader,
        account_country: str = "US",
    ) -> None:
        self.sessions = sessions
        self.reader = reader
        self.account_country = account_country

    async def run(self) -> ImportResult:
        result = ImportResult()
        result.balance_transactions = await self.balance_transactions()
        await self.refresh_pending()
        result.payouts = await self.payouts()
        result.payout_contents = await self.payout_contents()
        return result

    async def balance_transactions(
        self, *, since: int | None = None, until: int | None = None
    ) -> int:
        """Incremental import (no arguments) or a backfill of [since, until)."""
        name = BT_CURSOR if since is None and until is None else f"backfill:{since}:{until}"
        return await self._windowed(name, since, until)

    async def _windowed(self, name: str, since: int | None, until: int | None) -> int:
        async with self.sessions() as session:
            cursor = await StripeMirror(session).cursor(name)
        if cursor.window_gte is None:  # open a new window at the cursor
            cursor.window_gte = max(cursor.created, since or 0)
            cursor.page_after = None
            cursor.window_max_created, cursor.window_max_id = cursor.created, cursor.last_id
        imported = 0
        while True:
            page = await self.reader.balance_transactions(
                created_gte=cursor.window_gte, created_lt=until, starting_after=cursor.page_after
            )
            now = datetime.now(UTC)
            rows = [bt_row(bt, self.account_country, now) for bt in page.items]
            async with self.sessions.begin() as session:
                mirror = StripeMirror(session)
                imported += await mirror.upsert_bts(rows)
                for r in rows:
                    key = (r["created"], r["id"])
                    if key > (cursor.window_max_created or 0, cursor.window_max_id or ""):
                        cursor.window_max_created, cursor.window_max_id = key
                if rows:
                    cursor.page_after = rows[-1]["id"]
                if not page.has_more or not rows:
                    cursor.created = cursor.window_max_created or cursor.created
                    cursor.last_id = cursor.window_max_id or cursor.last_id
                    cursor.window_gte = cursor.page_after = None
                    cursor.window_max_created = cursor.window_max_id = None
                await mirror.save_cursor(cursor)
            if cursor.window_gte is None:
                return imported

    async def refresh_pending(self) -> int:
        """Re-read transactions from the oldest one still pending (their status changes)."""
        async with self.sessions() as session:
            oldest = await StripeMirror(session).oldest_pending_created()
        if oldest is None:
            return 0
        after: str | None = None
        seen = 0
        while True:
            page = await self.reader.balance_transactions(
                created_gte=oldest, starting_after=after, expand_source=False
            )
            now = datetime.now(UTC)
            async with self.sessions.begin() as session:
                # Only status and available_on are refreshed: the expanded fields stay.
                await StripeMirror(session).upsert_bts(
                    [bt_row(bt, self.account_country, now) for bt in page.items]
                )
            seen += len(page.items)
            if not page.has_more or not page.items:
                return seen
            after = page.items[-1]["id"]

    async def payouts(self) -> int:
        async with self.sessions() as session:
            mirror = StripeMirror(session)
            cursor = await mirror.cursor(PAYOUT_CURSOR)
            refresh = await mirror.payouts_to_refresh()
        imported = 0
        after: str | None = None
        newest = (cursor.created, cursor.last_id)
        while True:
            page: Page = await self.reader.payouts(created_gte=cursor.created, starting_after=after)
            now = datetime.now(UTC)
            rows = [payout_row(po, now) for po in page.items]
            async with self.sessions.begin() as session:
                imported += await StripeMirror(session).upsert_payouts(rows)
            for r in rows:
                newest = max(newest, (r["created"], r["id"]))
            if not page.has_more or not rows:
                break
            after = rows[-1]["id"]
        seen = set()
        for po_id in refresh:
            po = await self.reader.payout(po_id)
            seen.add(po_id)
            async with self.sessions.begin() as session:
                await StripeMirror(session).upsert_payouts([payout_row(po, datetime.now(UTC))])
        async with self.sessions.begin() as session:
            await StripeMirror(session).save_cursor(Cursor(PAYOUT_CURSOR, newest[0], newest[1]))
        return imported

    async def payout_contents(self) -> int:
        async with self.sessions() as session:
            todo = await StripeMirror(session).payouts_needing_contents()
        for po in todo:
            ids: list[str] = []
            after: str | None = None
            while True:
                page = await self.reader.balance_transactions(
                    payout=po["id"], starting_after=after, expand_source=False
                )
                ids.extend(str(bt["id"]) for bt in page.items)
                if not page.has_more or not page.items:
                    break
                after = page.items[-1]["id"]
            own = {po["balance_transaction"] or "", po["failure_balance_transaction"] or ""}
            async with self.sessions.begin() as session:
                await StripeMirror(session).record_contents(po["id"], ids, own)
        return len(todo)
