"""Payouts: manual and automatic, pending -> in_transit -> paid | failed on the emulator clock.

- A payout debits the available balance at once (balance transaction type `payout`,
  reporting category `payout`, negative amount).
- One hour after creation it is `in_transit`; at its arrival date (midnight UTC
  `config.payout_delay_days` days after creation) it is `paid`, unless its bank account is a
  failing test account: then it is `failed` with the bank's failure code, and a
  `payout_failure` balance transaction returns the funds.
- Automatic payouts: every emulator day at 00:00:01 UTC each account whose payout schedule is
  due (daily; weekly/monthly on their anchor) gets one payout per currency of every available
  balance transaction not yet paid out. `GET /v1/balance_transactions?payout=po_...` lists
  them and the payout's own transaction, so their nets sum to zero; the payout's
  reconciliation_status goes in_progress -> completed when it is paid
  (`payout.reconciliation_completed`).
"""

from __future__ import annotations

import itertools
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .. import money
from ..errors import invalid
from ..params import Params, merge_metadata
from ..router import route
from ..state import Ctx, Emulator, on_restore, timer
from ..store import Obj
from . import balance, connect
from .common import created_filter, list_response

__all__ = ["ensure_schedule", "start_schedule"]

DAY = 86_400
IN_TRANSIT_AFTER_S = 3600
STATUSES = frozenset({"pending", "in_transit", "paid", "failed", "canceled"})


@dataclass
class _Sweep:
    """What automatic payouts have not yet swept, per account (derived, in memory)."""

    token: int
    cursor: dict[str, str] = field(default_factory=dict)  # newest BT examined
    waiting: dict[str, set[str]] = field(default_factory=dict)  # pending BTs seen
    ready: dict[str, dict[str, list[tuple[str, int]]]] = field(default_factory=dict)


_STATE: weakref.WeakKeyDictionary[Emulator, _Sweep] = weakref.WeakKeyDictionary()
_TOKENS = itertools.count(1)


def start_schedule(em: Emulator) -> None:
    """(Re)start automatic payouts: at emulator start and after every reset."""
    token = next(_TOKENS)
    _STATE[em] = _Sweep(token)
    balance.reset_state(em)
    first = (em.now() // DAY + 1) * DAY + 1
    em.schedule(first, "payouts.daily", (token, first))


def ensure_schedule(em: Emulator) -> None:
    """Start automatic payouts if this emulator has not (a store loaded from disk)."""
    if em not in _STATE:
        start_schedule(em)


@on_restore
def _restore(em: Emulator) -> None:
    """After loading a SQLite store: resume payouts in flight and what is left to sweep."""
    start_schedule(em)
    st = _STATE[em]
    for account in em.store.accounts_with("payout"):
        for po_id in em.store.iter_ids(account, "payout", newest_first=False):
            po = em.store.get(po_id, kind="payout")
            if po is None or po["status"] not in ("pending", "in_transit"):
                continue
            at = po["created"] + IN_TRANSIT_AFTER_S
            em.schedule(at if po["status"] == "pending" else po["arrival_date"], _PROGRESS, po_id)
    for account in em.store.accounts_with("balance_transaction"):
        swept: set[str] = set()
        for po_id in em.store.iter_ids(account, "payout", newest_first=False):
            po = em.store.get(po_id, kind="payout")
            if po is not None and po["automatic"]:
                swept.update(_contents(em, account, po_id))
        st.waiting[account] = set()
        ready = st.ready.setdefault(account, {})
        for bt_id in em.store.iter_ids(account, "balance_transaction", newest_first=False):
            st.cursor[account] = bt_id
            if bt_id in swept:
                continue
            bt = em.store.get(bt_id, kind="balance_transaction")
            if bt is None:
                continue
            if bt["status"] == "available":
                ready.setdefault(bt["currency"], []).append((bt_id, bt["net"]))
            else:
                st.waiting[account].add(bt_id)


def _contents(em: Emulator, account: str, po_id: str) -> list[str]:
    out: list[str] = []
    cursor: str | None = None
    while True:
        items, more = em.store.page(
            account, "balance_transaction", limit=100, starting_after=cursor,
            where=("payout", po_id),
        )  # fmt: skip
        out.extend(bt["id"] for bt in items)
        if not more or not items:
            return out
        cursor = items[-1]["id"]


_PROGRESS = "payouts.progress"


def _ctx_for(em: Emulator, account: str) -> Ctx:
    return em.ctx(account)


# -- the payout object ------------------------------------------------------------------------
def _create(
    ctx: Ctx,
    *,
    amount: int,
    currency: str,
    bank: Obj,
    automatic: bool,
    description: str | None = None,
    metadata: dict[str, str] | None = None,
    statement_descriptor: str | None = None,
    source_type: str = "card",
    at: int | None = None,
) -> Obj:
    """Create a payout; `at` is the moment it is made (a timer's, when the clock jumped)."""
    po_id = ctx.new_id("po")
    bt = money.post_balance_transaction(
        ctx,
        amount=-amount,
        currency=currency,
        type="payout",
        reporting_category="payout",
        source=po_id,
        description="STRIPE PAYOUT",
    )
    ctx.store.add_index(ctx.account, "balance_transaction", "payout", po_id, bt["id"])
    now = ctx.now if at is None else at
    po: Obj = {
        "id": po_id,
        "object": "payout",
        "amount": amount,
        "application_fee": None,
        "application_fee_amount": None,
        "arrival_date": (now // DAY + ctx.config.payout_delay_days) * DAY,
        "automatic": automatic,
        "balance_transaction": bt["id"],
        "created": now,
        "currency": currency,
        "description": description or ("STRIPE PAYOUT" if automatic else None),
        "destination": bank["id"],
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "livemode": False,
        "metadata": metadata or {},
        "method": "standard",
        "original_payout": None,
        "payout_method": None,
        "reconciliation_status": "in_progress" if automatic else "not_applicable",
        "reversed_by": None,
        "source_type": source_type,
        "statement_descriptor": statement_descriptor,
        "status": "pending",
        "trace_id": {"status": "pending", "value": None},
        "type": "bank_account",
    }
    ctx.insert(po, ("destination",))
    ctx.em.schedule(now + IN_TRANSIT_AFTER_S, "payouts.progress", po_id)
    ctx.emit("payout.created", po)
    return po


def _bank_for(em: Emulator, account: str, currency: str) -> Obj | None:
    bank = connect.default_bank_account(em, account, currency)
    if (
        bank is None
        and account == em.config.platform_account
        and currency == em.config.default_currency
    ):
        bank = connect.ensure_platform_bank(em)
    return bank


@timer("payouts.progress")
def _progress(em: Emulator, po_id: str) -> None:
    po = em.store.get(po_id, kind="payout")
    account = em.store.owner(po_id)
    if po is None or account is None:
        return
    ctx = _ctx_for(em, account)
    if po["status"] == "pending":
        po["status"] = "in_transit"
        em.store.save(po)
        ctx.emit("payout.updated", po, {"status": "pending"})
        em.schedule(max(po["arrival_date"], em.now_f()), "payouts.progress", po_id)
        return
    if po["status"] != "in_transit":
        return
    if em.now() < po["arrival_date"]:
        em.schedule(po["arrival_date"], "payouts.progress", po_id)
        return
    bank = em.store.get(po["destination"], kind="bank_account")
    code = connect.bank_failure(bank)
    if code is None:
        po["status"] = "paid"
        po["trace_id"] = {"status": "supported", "value": f"TRACE{po_id[-12:].upper()}"}
        if po["automatic"]:
            po["reconciliation_status"] = "completed"
        em.store.save(po)
        ctx.emit("payout.paid", po)
        if po["automatic"]:
            ctx.emit("payout.reconciliation_completed", po)
        return
    bt = money.post_balance_transaction(
        ctx,
        amount=po["amount"],
        currency=po["currency"],
        type="payout_failure",
        reporting_category="payout_reversal",
        source=po_id,
        description="Payout failure",
    )
    po["status"] = "failed"
    po["failure_code"] = code
    po["failure_message"] = connect.FAILURE_MESSAGES[code]
    po["failure_balance_transaction"] = bt["id"]
    po["trace_id"] = {"status": "unsupported", "value": None}
    em.store.save(po)
    if bank is not None and code in ("no_account", "account_closed"):
        bank["status"] = "errored"
        em.store.save(bank)
    ctx.emit("payout.failed", po)


# -- automatic payouts ------------------------------------------------------------------------
def _due(schedule: dict[str, Any], at: float) -> bool:
    interval = schedule.get("interval")
    if interval == "daily":
        return True
    day = datetime.fromtimestamp(at, tz=UTC)
    if interval == "weekly":
        return connect.WEEKDAYS[day.weekday()] == str(schedule.get("weekly_anchor", "monday"))
    if interval == "monthly":
        anchor = int(schedule.get("monthly_anchor", 1))
        next_day = datetime.fromtimestamp(at + DAY, tz=UTC)
        last_of_month = next_day.month != day.month
        return day.day == anchor or (last_of_month and anchor > day.day)
    return False


def _collect(em: Emulator, st: _Sweep, account: str) -> dict[str, list[tuple[str, int]]]:
    """Move every newly available balance transaction of `account` into its ready lists."""
    cursor = st.cursor.get(account)
    new: list[str] = []
    for bt_id in em.store.iter_ids(account, "balance_transaction", newest_first=True):
        if bt_id == cursor:
            break
        new.append(bt_id)
    if new:
        st.cursor[account] = new[0]
    new.reverse()
    waiting = st.waiting.setdefault(account, set())
    ready = st.ready.setdefault(account, {})
    for bt_id in sorted(waiting) + new:
        bt = em.store.get(bt_id, kind="balance_transaction")
        if bt is None:
            waiting.discard(bt_id)
        elif bt["status"] == "available":
            waiting.discard(bt_id)
            ready.setdefault(bt["currency"], []).append((bt_id, bt["net"]))
        else:
            waiting.add(bt_id)
    return ready


def _sweep(em: Emulator, st: _Sweep, acct: Obj, at: int) -> None:
    account = acct["id"]
    ready = _collect(em, st, account)
    ctx = _ctx_for(em, account)
    made = False
    for currency, items in sorted(ready.items()):
        total = sum(net for _, net in items)
        if total <= 0 or total > money.balance_of(em, account, currency)["available"]:
            continue
        bank = _bank_for(em, account, currency)
        if bank is None:
            continue
        po = _create(ctx, amount=total, currency=currency, bank=bank, automatic=True, at=at)
        for bt_id, _ in items:
            em.store.add_index(account, "balance_transaction", "payout", po["id"], bt_id)
        items.clear()
        made = True
    if made:  # the payouts' own transactions are already accounted for
        for bt_id in em.store.iter_ids(account, "balance_transaction", newest_first=True):
            st.cursor[account] = bt_id
            break


@timer("payouts.daily")
def _daily(em: Emulator, arg: tuple[int, float]) -> None:
    token, at = arg
    st = _STATE.get(em)
    if st is None or st.token != token:
        return  # a timer from before a reset
    platform = em.config.platform_account
    for acct_id in list(em.store.iter_ids(platform, "account", newest_first=False)):
        acct = em.store.get(acct_id, kind="account")
        if acct is None:
            continue
        schedule = acct["settings"]["payouts"]["schedule"]
        if acct_id != platform and not acct.get("payouts_enabled"):
            continue
        if _due(schedule, at):
            _sweep(em, st, acct, int(at))
    em.schedule(at + DAY, "payouts.daily", (token, at + DAY))


# -- API --------------------------------------------------------------------------------------
@route("POST", "/v1/payouts", perm="payouts")
def create(ctx: Ctx, p: Params) -> Obj:
    ensure_schedule(ctx.em)
    amount = p.amount("amount", required=True)
    currency = p.currency("currency", required=True)
    assert amount is not None and currency is not None
    description = p.string("description", max_len=5000)
    metadata = p.metadata()
    destination = p.string("destination")
    method = p.string("method", choices={"standard", "instant"}) or "standard"
    descriptor = p.string("statement_descriptor", max_len=22)
    source_type = p.string("source_type", choices={"card", "bank_account", "fpx"}) or "card"
    p.done()
    if method == "instant":
        raise invalid("Instant Payouts are not available for this account.", "method")
    if destination is not None:
        bank = ctx.store.get(destination, ctx.account, "bank_account")
        if bank is None:
            raise invalid(
                f"No such external account: '{destination}'", "destination", "resource_missing"
            )
        if bank["currency"] != currency:
            raise invalid(
                f"The currency of the destination bank account ({bank['currency']}) does not "
                f"match the payout currency ({currency}).",
                "currency",
            )
    else:
        found = _bank_for(ctx.em, ctx.account, currency)
        if found is None:
            raise invalid(
                f"Sorry, you don't have any external accounts in that currency ({currency}).",
                "currency",
            )
        bank = found
    if money.balance_of(ctx.em, ctx.account, currency)["available"] < amount:
        raise balance.insufficient_funds(payout=True)
    return _create(
        ctx,
        amount=amount,
        currency=currency,
        bank=bank,
        automatic=False,
        description=description,
        metadata=metadata,
        statement_descriptor=descriptor,
        source_type=source_type,
    )


@route("GET", "/v1/payouts/{id}", perm="payouts")
def retrieve(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    return ctx.get(id, "payout")


@route("POST", "/v1/payouts/{id}", perm="payouts")
def update(ctx: Ctx, p: Params, id: str) -> Obj:
    po = ctx.get(id, "payout")
    meta = merge_metadata(po["metadata"], p.metadata())
    p.done()
    if meta != po["metadata"]:
        before = {"metadata": po["metadata"]}
        po["metadata"] = meta
        ctx.save(po)
        ctx.emit("payout.updated", po, before)
    return po


@route("POST", "/v1/payouts/{id}/cancel", perm="payouts")
def cancel(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    po = ctx.get(id, "payout")
    if po["automatic"]:
        raise invalid("Automatic payouts cannot be canceled.", "payout")
    if po["status"] != "pending":
        raise invalid(
            f"This payout cannot be canceled because it has a status of {po['status']}. Only "
            "pending payouts can be canceled.",
            "payout",
        )
    bt = money.post_balance_transaction(
        ctx,
        amount=po["amount"],
        currency=po["currency"],
        type="payout_cancel",
        reporting_category="payout_reversal",
        source=po["id"],
        description="Payout cancellation",
    )
    po["status"] = "canceled"
    po["failure_balance_transaction"] = bt["id"]
    ctx.save(po)
    ctx.emit("payout.canceled", po)
    return po


@route("GET", "/v1/payouts", perm="payouts")
def list_(ctx: Ctx, p: Params) -> Obj:
    status = p.string("status", choices=STATUSES)
    destination = p.string("destination")
    arrival = created_filter(p, "arrival_date")

    def predicate(o: Obj) -> bool:
        return (status is None or o["status"] == status) and (arrival is None or arrival(o))

    return list_response(
        ctx,
        p,
        "payout",
        "/v1/payouts",
        where=("destination", destination) if destination else None,
        predicate=predicate if (status or arrival) else None,
    )
