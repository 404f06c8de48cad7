"""Stripe's view as the ledger imported it: balance transactions, payouts, what each payout
contains, and the import cursors. Rows are upserted by Stripe id, so re-importing is harmless.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.money import convert, parse_rate
from ..domain.rules import BalanceTransaction
from .tables import import_cursors, payout_contents, stripe_bts, stripe_payouts

__all__ = ["Cursor", "StripeMirror", "bt_row", "payout_row"]


@dataclass
class Cursor:
    name: str
    created: int = 0
    last_id: str = ""
    window_gte: int | None = None
    page_after: str | None = None
    window_max_created: int | None = None
    window_max_id: str | None = None


def _id(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return str(value.get("id")) if value.get("id") else None
    return str(value)


def bt_row(bt: dict[str, Any], account_country: str, now: datetime) -> dict[str, Any]:
    """A balance transaction (with `source` expanded or not) as a mirror row."""
    source = bt.get("source")
    src = source if isinstance(source, dict) else {}
    source_amount: int | None = None
    source_currency: str | None = None
    international: bool | None = None
    kind = src.get("object")
    if kind == "charge":
        source_amount = int(src.get("amount_captured") or src.get("amount") or 0)
        source_currency = src.get("currency")
        card = ((src.get("payment_method_details") or {}).get("card")) or {}
        if card.get("country"):
            international = str(card["country"]).upper() != account_country.upper()
    elif kind in ("refund", "dispute"):
        source_amount = int(src.get("amount") or 0)
        source_currency = src.get("currency")
    rate = parse_rate(bt.get("exchange_rate"))
    currency = str(bt["currency"])
    fx_expected: int | None = None
    if rate is not None and source_amount is not None and source_currency:
        magnitude = convert(source_amount, str(source_currency), currency, rate)
        fx_expected = magnitude if int(bt["amount"]) >= 0 else -magnitude
    return {
        "id": bt["id"],
        "created": int(bt["created"]),
        "available_on": int(bt.get("available_on") or bt["created"]),
        "status": str(bt.get("status") or "available"),
        "type": str(bt["type"]),
        "reporting_category": str(bt.get("reporting_category") or bt["type"]),
        "source": _id(source),
        "currency": currency,
        "amount": int(bt["amount"]),
        "fee": int(bt.get("fee") or 0),
        "net": int(bt["net"]),
        "exchange_rate": None if rate is None else str(rate),
        "source_amount": source_amount,
        "source_currency": source_currency,
        "international": international,
        "fx_expected_amount": fx_expected,
        "payout_id": None,
        "raw": {k: v for k, v in bt.items() if k != "source"} | {"source": _id(source)},
        "imported_at": now,
    }


def payout_row(po: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "id": po["id"],
        "created": int(po["created"]),
        "arrival_date": int(po.get("arrival_date") or po["created"]),
        "status": str(po["status"]),
        "automatic": bool(po.get("automatic")),
        "reconciliation_status": str(po.get("reconciliation_status") or "not_applicable"),
        "currency": str(po["currency"]),
        "amount": int(po["amount"]),
        "balance_transaction": _id(po.get("balance_transaction")),
        "failure_balance_transaction": _id(po.get("failure_balance_transaction")),
        "failure_code": po.get("failure_code"),
        "contents_imported": False,
        "contents_count": 0,
        "contents_net": 0,
        "raw": po,
        "imported_at": now,
    }


_MUTABLE_BT = ("status", "available_on")
_MUTABLE_PAYOUT = (
    "status", "reconciliation_status", "amount", "failure_balance_transaction", "failure_code",
    "arrival_date", "raw",
)  # fmt: skip


class StripeMirror:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert_bts(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert new transactions, refresh what can change (status); returns how many new."""
        if not rows:
            return 0
        ids = [r["id"] for r in rows]
        stmt = select(stripe_bts.c.id, stripe_bts.c.status, stripe_bts.c.available_on).where(
            stripe_bts.c.id.in_(ids)
        )
        existing = {r.id: r for r in (await self.session.execute(stmt)).all()}
        new = [r for r in rows if r["id"] not in existing]
        if new:
            await self.session.execute(insert(stripe_bts), new)
        for r in rows:
            old = existing.get(r["id"])
            if old is not None and (old.status, old.available_on) != (
                r["status"],
                r["available_on"],
            ):
                await self.session.execute(
                    update(stripe_bts)
                    .where(stripe_bts.c.id == r["id"])
                    .values({k: r[k] for k in _MUTABLE_BT})
                )
        return len(new)

    async def upsert_payouts(self, rows: Sequence[dict[str, Any]]) -> int:
        if not rows:
            return 0
        ids = [r["id"] for r in rows]
        stmt = select(stripe_payouts.c.id).where(stripe_payouts.c.id.in_(ids))
        existing = {r.id for r in (await self.session.execute(stmt)).all()}
        new = [r for r in rows if r["id"] not in existing]
        if new:
            await self.session.execute(insert(stripe_payouts), new)
        for r in rows:
            if r["id"] in existing:
                await self.session.execute(
                    update(stripe_payouts)
                    .where(stripe_payouts.c.id == r["id"])
                    .values({k: r[k] for k in _MUTABLE_PAYOUT})
                )
        return len(new)

    async def record_contents(self, payout_id: str, bt_ids: Sequence[str], own: set[str]) -> None:
        """What a payout swept (its own transaction excluded from count and net)."""
        if bt_ids:
            stmt = select(payout_contents.c.bt_id).where(payout_contents.c.payout_id == payout_id)
            have = {r[0] for r in (await self.session.execute(stmt)).all()}
            add = [
                {"payout_id": payout_id, "bt_id": b} for b in dict.fromkeys(bt_ids) if b not in have
            ]
            if add:
                await self.session.execute(insert(payout_contents), add)
            await self.session.execute(
                update(stripe_bts)
                .where(stripe_bts.c.id.in_(list(bt_ids)))
                .values(payout_id=payout_id)
            )
        swept = [b for b in bt_ids if b not in own]
        total = 0
        if swept:
            stmt2 = select(func.coalesce(func.sum(stripe_bts.c.net), 0)).where(
                stripe_bts.c.id.in_(swept)
            )
            total = int((await self.session.execute(stmt2)).scalar_one())
        await self.session.execute(
            update(stripe_payouts)
            .where(stripe_payouts.c.id == payout_id)
            .values(contents_imported=True, contents_count=len(swept), contents_net=total)
        )

    async def payouts_to_refresh(self) -> list[str]:
        stmt = select(stripe_payouts.c.id).where(
            stripe_payouts.c.status.in_(("pending", "in_transit"))
            | (stripe_payouts.c.automatic & (stripe_payouts.c.reconciliation_status != "completed")
               & (stripe_payouts.c.status == "paid"))
        )  # fmt: skip
        return [r[0] for r in (await self.session.execute(stmt)).all()]

    async def payouts_needing_contents(self) -> list[dict[str, Any]]:
        """Automatic payouts whose contents Stripe can list (reconciled, or failed/canceled)."""
        stmt = select(stripe_payouts).where(
            stripe_payouts.c.automatic,
            ~stripe_payouts.c.contents_imported,
            (stripe_payouts.c.reconciliation_status == "completed")
            | stripe_payouts.c.status.in_(("failed", "canceled")),
        )
        return [dict(r._mapping) for r in (await self.session.execute(stmt)).all()]

    async def oldest_pending_created(self) -> int | None:
        stmt = select(func.min(stripe_bts.c.created)).where(stripe_bts.c.status == "pending")
        value = (await self.session.execute(stmt)).scalar_one()
        return None if value is None else int(value)

    async def get_bt(self, bt_id: str) -> BalanceTransaction | None:
        row = (
            await self.session.execute(select(stripe_bts).where(stripe_bts.c.id == bt_id))
        ).first()
        return None if row is None else to_bt(row)

    async def cursor(self, name: str) -> Cursor:
        row = (
            await self.session.execute(select(import_cursors).where(import_cursors.c.name == name))
        ).first()
        if row is None:
            return Cursor(name)
        return Cursor(
            name, int(row.created), row.last_id, row.window_gte, row.page_after,
            row.window_max_created, row.window_max_id,
        )  # fmt: skip

    async def save_cursor(self, c: Cursor) -> None:
        values = {
            "created": c.created,
            "last_id": c.last_id,
            "window_gte": c.window_gte,
            "page_after": c.page_after,
            "window_max_created": c.window_max_created,
            "window_max_id": c.window_max_id,
            "updated_at": datetime.now(UTC),
        }
        result = await self.session.execute(
            update(import_cursors).where(import_cursors.c.name == c.name).values(values)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            await self.session.execute(insert(import_cursors).values(name=c.name, **values))


def to_bt(row: Any) -> BalanceTransaction:
    return BalanceTransaction(
        id=row.id,
        type=row.type,
        reporting_category=row.reporting_category,
        source=row.source or "",
        currency=row.currency,
        amount=int(row.amount),
        fee=int(row.fee),
        net=int(row.net),
        status=row.status,
        exchange_rate=parse_rate(row.exchange_rate),
    )
