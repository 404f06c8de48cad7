"""The aggregates behind the fraud features, read in ONE statement at decision time.

Every aggregate is a scalar subquery over an index ((customer_ref, created_at),
(card_fingerprint, created_at), (ip_address, created_at), (email, created_at), and the
declines table's two), so a decision costs one round trip whatever the history's size.
Windows are defined in fraud/features.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Float, Select, bindparam, cast, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.declines import Advice
from ..fraud.features import DISTINCT_DAYS, HISTORY_DAYS, RADAR_DAYS, WINDOWS, History, Signals
from .tables import declines, payments

__all__ = ["FraudHistory"]

DAY = 86_400
_RISKY = ("elevated", "highest")
_DIMS = ("customer", "card", "ip", "email")
# (customer, card, ip, email known) -> the statement for that shape; at most 16
_STATEMENTS: dict[tuple[bool, bool, bool, bool], Select[Any]] = {}


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _statement(customer: bool, card: bool, ip: bool, email: bool) -> Select[Any]:
    """The history statement for one shape of signals (which dimensions are known), with
    every value a named bind parameter, so it is built, cache-keyed and compiled once."""
    p = payments.c
    cols: dict[str, Any] = {}
    zero: ColumnElement[Any] = literal(0)

    def count(where: list[ColumnElement[bool]]) -> Any:
        return select(func.count()).select_from(payments).where(*where).scalar_subquery()

    dims = {
        "customer": (p.customer_ref, customer),
        "card": (p.card_fingerprint, card),
        "ip": (p.ip_address, ip),
        "email": (p.email, email),
    }
    for dim, (col, known) in dims.items():
        for w in WINDOWS:
            cols[f"v_{dim}_{w}"] = (
                count([col == bindparam(dim), p.created_at >= bindparam(f"since_{w}")])
                if known
                else zero
            )
    ok = [
        p.customer_ref == bindparam("customer"),
        p.created_at >= bindparam("since_hist"),
        # `status || ''` keeps planners on the (customer_ref, created_at) index: the status
        # index would scan every succeeded payment in the window.
        p.status.op("||")("") == "succeeded",
        p.currency == bindparam("currency"),
    ]
    cols["ok_n"] = count(ok)
    cols["ok_sum"] = select(func.coalesce(func.sum(p.amount), 0)).where(*ok).scalar_subquery()
    # Squares summed as floating point: a heavy customer's sum of squared amounts passes
    # 2**63 (SQLite raises "integer overflow"); the z-score needs no more than a double's
    # precision (its spread floors at 1 % of the mean).
    amount = cast(p.amount, Float)
    cols["ok_sq"] = (
        select(func.coalesce(func.sum(amount * amount), 0.0)).where(*ok).scalar_subquery()
    )
    cols["cards"] = (
        select(func.count(func.distinct(p.card_fingerprint)))
        .where(p.customer_ref == bindparam("customer"), p.created_at >= bindparam("since_30"))
        .scalar_subquery()
    )
    cols["customers"] = (
        select(func.count(func.distinct(p.customer_ref)))
        .where(p.card_fingerprint == bindparam("card"), p.created_at >= bindparam("since_30"))
        .scalar_subquery()
        if card
        else zero
    )
    d = declines.c
    cols["dec_customer"] = (
        select(func.count())
        .select_from(declines)
        .where(d.customer_ref == bindparam("customer"), d.occurred_at >= bindparam("since_24"))
        .scalar_subquery()
    )
    if card:
        cols["dec_card"] = (
            select(func.count())
            .select_from(declines)
            .where(d.card_fingerprint == bindparam("card"), d.occurred_at >= bindparam("since_24"))
            .scalar_subquery()
        )
        cols["dec_card_never"] = (
            select(func.count())
            .select_from(declines)
            .where(
                d.card_fingerprint == bindparam("card"),
                d.occurred_at >= bindparam("since_30"),
                d.advice == Advice.NEVER.value,
            )
            .scalar_subquery()
        )
    else:
        cols["dec_card"] = cols["dec_card_never"] = zero
    for dim in ("customer", "card"):
        col, known = dims[dim]
        if not known:
            cols[f"risk_max_{dim}"] = literal(None)
            cols[f"risk_elev_{dim}"] = zero
            continue
        cols[f"risk_max_{dim}"] = (
            select(func.max(p.radar_risk_score))
            .where(col == bindparam(dim), p.created_at >= bindparam("since_90"))
            .scalar_subquery()
        )
        cols[f"risk_elev_{dim}"] = count(
            [
                col == bindparam(dim),
                p.created_at >= bindparam("since_90"),
                p.radar_risk_level.in_(_RISKY),
            ]
        )
    return select(*(c.label(name) for name, c in cols.items()))


class FraudHistory:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def load(self, s: Signals, now: float) -> History:
        email = s.email.lower()
        shape = (bool(s.customer_ref), bool(s.card_fingerprint), bool(s.ip_address), bool(email))
        stmt = _STATEMENTS.get(shape)
        if stmt is None:
            stmt = _STATEMENTS[shape] = _statement(*shape)
        params: dict[str, Any] = {
            "customer": s.customer_ref,
            "card": s.card_fingerprint,
            "ip": s.ip_address,
            "email": email,
            "currency": s.currency,
            "since_hist": _at(now - HISTORY_DAYS * DAY),
            "since_30": _at(now - DISTINCT_DAYS * DAY),
            "since_90": _at(now - RADAR_DAYS * DAY),
            "since_24": _at(now - DAY),
        }
        for w, seconds in WINDOWS.items():
            params[f"since_{w}"] = _at(now - seconds)
        row = (await self.session.execute(stmt, params)).one()._mapping
        velocity = {dim: {w: int(row[f"v_{dim}_{w}"] or 0) for w in WINDOWS} for dim in _DIMS}
        risk_scores = [row[k] for k in ("risk_max_customer", "risk_max_card") if row[k] is not None]
        return History(
            velocity=velocity,
            succeeded_count=int(row["ok_n"] or 0),
            succeeded_sum=int(row["ok_sum"] or 0),
            succeeded_sum_sq=float(row["ok_sq"] or 0.0),
            distinct_cards_per_customer=int(row["cards"] or 0),
            distinct_customers_per_card=int(row["customers"] or 0),
            declines_customer_24h=int(row["dec_customer"] or 0),
            declines_card_24h=int(row["dec_card"] or 0),
            never_retry_declines_card_30d=int(row["dec_card_never"] or 0),
            radar_max_risk_score=max(int(r) for r in risk_scores) if risk_scores else None,
            radar_elevated=max(
                int(row["risk_elev_customer"] or 0), int(row["risk_elev_card"] or 0)
            ),
        )
