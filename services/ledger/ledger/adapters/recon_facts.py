"""The facts reconciliation decides on, read set-based: a handful of SQL statements whatever
the volume, and only what differs comes back (the rules in domain.matching then classify it).

- transactions: the sum of what every entry linked to a balance transaction booked (gross,
  fee, settled) against the transaction, one LEFT JOIN over a grouped subquery;
- pricing: each charge's fee against the model's, computed in SQL with half-even rounding
  in integers exactly as `PricingModel.expected_fee` does;
- rates: converted amounts against the presentment amount at the transaction's own rate;
- bookings of transactions Stripe does not have, among entries older than a cutoff;
- payouts with their transaction, contents and the ledger's in-transit and bank movement;
- what Stripe's view asks the ledger to book (payout transactions, payouts paid,
  settlements) and Stripe's balance as imported.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.matching import (
    PAYOUT_TYPES,
    PRICED_TYPES,
    ConvertedAmount,
    LedgerView,
    PayoutFacts,
    PricedCharge,
    UnmatchedBooking,
)
from ..domain.pricing import PricingModel
from ..domain.rules import BalanceTransaction
from .stripe_mirror import to_bt
from .tables import entries, postings, stripe_bts

__all__ = ["PaidPayout", "ReconFacts", "Unsettled"]


def _in(values: Sequence[str]) -> str:
    """A literal IN list of fixed, known identifiers (domain constants, never input)."""
    return ", ".join(f"'{v}'" for v in values)


_PAYOUT_IN = _in(PAYOUT_TYPES)
_PRICED_IN = _in(PRICED_TYPES)


def _window(since: int | None, until: int | None, alias: str = "s") -> tuple[str, dict[str, Any]]:
    clauses, params = [], {}
    if since is not None:
        clauses.append(f"{alias}.created >= :since")
        params["since"] = since
    if until is not None:
        clauses.append(f"{alias}.created < :until")
        params["until"] = until
    return (" AND " + " AND ".join(clauses)) if clauses else "", params


@dataclass(frozen=True)
class PaidPayout:
    """A payout Stripe reports paid that the ledger has not moved to the bank."""

    id: str
    currency: str
    debited: int  # what its balance transaction took (positive)
    balance_transaction_id: str


@dataclass(frozen=True)
class Unsettled:
    """A booked transaction Stripe reports available that the ledger has not settled."""

    id: str
    currency: str
    net: int
    source: str


class ReconFacts:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- what Stripe's view asks the ledger to book --------------------------------------------
    async def unbooked_payout_transactions(self) -> list[BalanceTransaction]:
        rows = (
            await self.session.execute(
                text(
                    "SELECT s.* FROM stripe_balance_transactions s "
                    "LEFT JOIN bt_bookings b ON b.bt_id = s.id "
                    "WHERE b.bt_id IS NULL "
                    f"AND s.type IN ({_PAYOUT_IN}) "
                    "ORDER BY s.created, s.id"
                )
            )
        ).all()
        return [to_bt(r) for r in rows]

    async def paid_payouts_not_in_bank(self) -> list[PaidPayout]:
        rows = (
            await self.session.execute(
                text(
                    "SELECT p.id, p.currency, bt.amount AS bt_amount, bt.id AS bt_id "
                    "FROM stripe_payouts p JOIN stripe_balance_transactions bt "
                    "ON bt.id = p.balance_transaction "
                    "WHERE p.status = 'paid' AND NOT EXISTS (SELECT 1 FROM journal_entries e "
                    "WHERE e.source_event_id = 'payout-paid:' || p.id)"
                )
            )
        ).all()
        return [PaidPayout(r.id, r.currency, -int(r.bt_amount), r.bt_id) for r in rows]

    async def unsettled(self, after: str, limit: int) -> list[Unsettled]:
        """Booked transactions Stripe made available, not yet settled, by id after `after`."""
        rows = (
            await self.session.execute(
                text(
                    "SELECT s.id, s.currency, s.net, s.source "
                    "FROM stripe_balance_transactions s "
                    "JOIN bt_bookings b ON b.bt_id = s.id "
                    "WHERE s.status = 'available' AND s.net != 0 AND s.id > :after "
                    "AND NOT EXISTS (SELECT 1 FROM journal_entries e "
                    "WHERE e.source_event_id = 'settle:' || s.id) "
                    "ORDER BY s.id LIMIT :n"
                ),
                {"after": after, "n": limit},
            )
        ).all()
        return [Unsettled(r.id, r.currency, int(r.net), r.source or "") for r in rows]

    # -- matching ------------------------------------------------------------------------------
    async def count_transactions(self, since: int | None, until: int | None) -> int:
        where, params = _window(since, until)
        value = (
            await self.session.execute(
                text(f"SELECT COUNT(*) FROM stripe_balance_transactions s WHERE 1=1{where}"),
                params,
            )
        ).scalar_one()
        return int(value)

    async def differing_transactions(
        self, since: int | None, until: int | None
    ) -> AsyncIterator[tuple[BalanceTransaction, LedgerView | None]]:
        """Each transaction whose linked entries do not sum to its figures (None: nothing
        booked it), streamed in (created, id) order."""
        where, params = _window(since, until)
        sql = (
            "SELECT s.*, l.bt_id AS l_id, l.g AS l_gross, l.f AS l_fee, l.st AS l_settled "
            "FROM stripe_balance_transactions s LEFT JOIN ("
            "  SELECT bt_id, SUM(COALESCE(bt_gross, 0)) AS g, SUM(COALESCE(bt_fee, 0)) AS f,"
            "         SUM(COALESCE(bt_settled, 0)) AS st"
            "  FROM journal_entries WHERE bt_id IS NOT NULL GROUP BY bt_id"
            ") l ON l.bt_id = s.id "
            "WHERE (l.bt_id IS NULL OR l.g != s.amount OR l.f != s.fee OR "
            "       l.st != CASE WHEN s.status = 'available' THEN s.net ELSE 0 END)"
            f"{where} ORDER BY s.created, s.id"
        )
        result = await self.session.stream(text(sql), params)
        async for row in result:
            booked = (
                None
                if row.l_id is None
                else LedgerView(int(row.l_gross), int(row.l_fee), int(row.l_settled))
            )
            yield to_bt(row), booked

    async def charges_off_model(
        self, since: int | None, until: int | None, model: PricingModel
    ) -> AsyncIterator[PricedCharge]:
        """Charges whose fee differs from the model's by more than its tolerance."""
        where, params = _window(since, until)
        params |= {"pct": model.percent_bp, "intl": model.international_bp, "fx": model.fx_bp,
                   "fixed": model.fixed * 10_000, "tol": model.tolerance}  # fmt: skip
        # Half-even rounding of (amount * bp + fixed * 10000) / 10000 in integers.
        sql = (
            "SELECT * FROM (SELECT s.*, "
            "  (x.num / 10000) + CASE WHEN 2 * (x.num % 10000) > 10000 OR "
            "     (2 * (x.num % 10000) = 10000 AND (x.num / 10000) % 2 = 1) THEN 1 ELSE 0 END "
            "  AS expected "
            "FROM stripe_balance_transactions s JOIN ("
            "  SELECT id, amount * (:pct + CASE WHEN international THEN :intl ELSE 0 END "
            "     + CASE WHEN exchange_rate IS NOT NULL THEN :fx ELSE 0 END) + :fixed AS num "
            f"  FROM stripe_balance_transactions WHERE type IN ({_PRICED_IN}) AND amount > 0"
            f") x ON x.id = s.id WHERE 1=1{where}) q "
            "WHERE ABS(q.fee - q.expected) > :tol ORDER BY q.created, q.id"
        )
        result = await self.session.stream(text(sql), params)
        async for row in result:
            yield PricedCharge(
                balance_transaction_id=row.id,
                type=row.type,
                currency=row.currency,
                source=row.source or "",
                amount=int(row.amount),
                fee=int(row.fee),
                international=bool(row.international),
                converted=row.exchange_rate is not None,
            )

    async def misconverted(self, since: int | None, until: int | None) -> list[ConvertedAmount]:
        """Converted transactions whose amount is not the presentment amount at their rate."""
        where, params = _window(since, until)
        sql = (
            "SELECT * FROM stripe_balance_transactions s WHERE s.fx_expected_amount IS NOT NULL "
            f"AND s.fx_expected_amount != s.amount{where} ORDER BY s.created, s.id"
        )
        rows = (await self.session.execute(text(sql), params)).all()
        return [
            ConvertedAmount(
                balance_transaction_id=r.id,
                currency=r.currency,
                source=r.source or "",
                amount=int(r.amount),
                exchange_rate=r.exchange_rate or "",
                source_amount=r.source_amount,
                source_currency=r.source_currency,
                expected_amount=int(r.fx_expected_amount),
            )
            for r in rows
        ]

    async def last_import_at(self) -> datetime | None:
        """When the newest imported transaction was imported (by any process)."""
        value: datetime | None = (
            await self.session.execute(select(func.max(stripe_bts.c.imported_at)))
        ).scalar_one()
        return value

    async def bookings_unknown_to_stripe(self, cutoff: datetime) -> list[UnmatchedBooking]:
        """Bookings, made before `cutoff`, of transactions Stripe's view does not hold (anything
        later may simply not be imported yet), with what all entries linked to each net to."""
        stmt = (
            select(
                entries.c.id, entries.c.bt_id, entries.c.source_event_id, entries.c.source_type,
                entries.c.source_id, entries.c.bt_gross, entries.c.seq,
                select(func.min(postings.c.currency))
                .where(postings.c.entry_seq == entries.c.seq)
                .scalar_subquery()
                .label("currency"),
            )
            .where(
                entries.c.link_role == "booking",
                entries.c.created_at < cutoff,
                ~select(text("1"))
                .select_from(text("stripe_balance_transactions s"))
                .where(text("s.id = journal_entries.bt_id"))
                .exists(),
            )
            .order_by(entries.c.seq)
        )  # fmt: skip
        rows = (await self.session.execute(stmt)).all()
        if not rows:
            return []
        net_stmt = (
            select(
                entries.c.bt_id,
                func.sum(func.coalesce(entries.c.bt_gross, 0)).label("g"),
                func.sum(func.coalesce(entries.c.bt_fee, 0)).label("f"),
                func.sum(func.coalesce(entries.c.bt_settled, 0)).label("st"),
            )
            .where(entries.c.bt_id.in_([r.bt_id for r in rows]))
            .group_by(entries.c.bt_id)
        )
        linked = {
            r.bt_id: LedgerView(int(r.g), int(r.f), int(r.st))
            for r in (await self.session.execute(net_stmt)).all()
        }
        return [
            UnmatchedBooking(
                entry_id=r.id,
                balance_transaction_id=r.bt_id,
                source_event_id=r.source_event_id,
                source_type=r.source_type,
                source_id=r.source_id,
                currency=r.currency or "",
                gross=int(r.bt_gross or 0),
                linked=linked.get(r.bt_id, LedgerView()),
            )
            for r in rows
        ]

    async def payouts(self, since: int | None, until: int | None) -> list[PayoutFacts]:
        where, params = _window(since, until, "p")
        sql = (
            "SELECT p.*, bt.amount AS bt_amount, "
            " (SELECT COALESCE(SUM(x.amount), 0) FROM postings x JOIN journal_entries e "
            "   ON e.seq = x.entry_seq "
            "   WHERE e.source_id = p.id AND x.account = 'payouts_in_transit') "
            "   AS in_transit, "
            " (SELECT COALESCE(SUM(x.amount), 0) FROM postings x JOIN journal_entries e "
            "   ON e.seq = x.entry_seq WHERE e.source_id = p.id AND x.account = 'bank') AS bank "
            "FROM stripe_payouts p LEFT JOIN stripe_balance_transactions bt "
            f"ON bt.id = p.balance_transaction WHERE 1=1{where} ORDER BY p.created, p.id"
        )
        rows = (await self.session.execute(text(sql), params)).all()
        return [
            PayoutFacts(
                id=r.id,
                currency=r.currency,
                status=r.status,
                amount=int(r.amount),
                bt_amount=None if r.bt_amount is None else int(r.bt_amount),
                contents_imported=bool(r.contents_imported),
                contents_count=int(r.contents_count),
                contents_net=int(r.contents_net),
                ledger_in_transit=int(r.in_transit),
                ledger_bank=int(r.bank),
            )
            for r in rows
        ]

    # -- corrections and tie-out ---------------------------------------------------------------
    async def ledger_view(self, bt_id: str) -> LedgerView | None:
        """What the entries linked to one transaction booked of it (None: nothing linked)."""
        stmt = select(
            func.coalesce(func.sum(entries.c.bt_gross), 0),
            func.coalesce(func.sum(entries.c.bt_fee), 0),
            func.coalesce(func.sum(entries.c.bt_settled), 0),
            func.count(),
        ).where(entries.c.bt_id == bt_id)
        g, f, st, n = (await self.session.execute(stmt)).one()
        return None if int(n) == 0 else LedgerView(int(g), int(f), int(st))

    async def imported_balance(self) -> dict[str, dict[str, int]]:
        """Stripe's balance per currency and bucket as its imported transactions add up."""
        out: dict[str, dict[str, int]] = defaultdict(lambda: {"pending": 0, "available": 0})
        rows = (
            await self.session.execute(
                text("SELECT currency, status, SUM(net) FROM stripe_balance_transactions "
                     "GROUP BY currency, status")
            )
        ).all()  # fmt: skip
        for cur, status, total in rows:
            out[cur]["available" if status == "available" else "pending"] += int(total)
        return dict(out)
