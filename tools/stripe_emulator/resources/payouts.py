"""Payouts: standard and instant, manual and automatic, on the emulator clock.

- A payout debits the available balance at once (balance transaction type `payout`,
  reporting category `payout`, negative amount).
- Standard: one hour after creation it is `in_transit`; at its arrival date (midnight UTC
  `config.payout_delay_days` days after creation) it is `paid`, unless its external account
  fails payouts (Stripe's failing test numbers, or `POST /_emulator/external_accounts/{id}/
  payout_failure`): then it is `failed` with the failure code and message, a `payout_failure`
  balance transaction returns the funds, and the external account is `errored` (scheduled
  payouts stop until it is updated or replaced). With `config.payout_return_days` > 0 a bank's
  return shows `paid` first and turns `failed` that many days later, as Stripe warns it can.
- Instant (`method=instant`, to an external account whose available_payout_methods has
  `instant`): paid within 30 minutes, for a fee (`pricing.instant_payout_bp`, at least
  `pricing.instant_payout_min`) on the payout's balance transaction. It may use pending card
  funds (the balance's `instant_available`): the shortfall is an `advance` (available now),
  repaid by an `advance_funding` when those funds settle, as Stripe books it.
- Automatic payouts follow each account's `settings.payouts.schedule` on the clock: every
  emulator day at 00:00:01 UTC each account whose schedule is due (daily; weekly on its
  weekly_anchor; monthly on its monthly_anchor, or the month's last day when the anchor is
  past it) and whose payouts are enabled gets one payout per currency of every available
  balance transaction not yet paid out. `GET /v1/balance_transactions?payout=po_...` lists
  them and the payout's own transaction, so their nets sum to zero; reconciliation_status goes
  in_progress -> completed when it is paid (`payout.reconciliation_completed`). A connected
  account's `delay_days` is how long its charges stay pending.
- Cancel: a pending standard manual payout (`payout_cancel` returns the funds). Reverse
  (`POST /v1/payouts/{id}/reverse`): a paid payout of a connected account to a US or Canadian
  bank account is debited back by a new payout (`original_payout` / `reversed_by`).
"""

from __future__ import annotations

import itertools
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .. import money
from ..errors import invalid
from ..params import Params, merge_metadata
from ..router import control, route
from ..state import Ctx, Emulator, on_restore, timer
from ..store import Obj
from . import balance, connect
from . import external_accounts as ext_mod
from .common import created_filter, list_response

if TYPE_CHECKING:
    from ..app import EmulatorApp

__all__ = ["ensure_schedule", "instant_fee", "start_schedule"]

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
            if po is None or po["status"] not in ("pending", "in_transit", "paid"):
                continue
            if po["status"] == "paid":
                code = _failure_for(em, po)
                if code is None or not _returns_later(em, code):
                    continue
                at = po["arrival_date"] + em.config.payout_return_days * DAY
            else:
                at = _in_transit_at(po) if po["status"] == "pending" else po["arrival_date"]
            em.schedule(at, _PROGRESS, po_id)
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
INSTANT_IN_TRANSIT_AFTER_S = 60
INSTANT_ARRIVAL_S = 1800  # Stripe: funds usually arrive within 30 minutes


def _ctx_for(em: Emulator, account: str) -> Ctx:
    return em.ctx(account)


def _in_transit_at(po: Obj) -> int:
    wait = INSTANT_IN_TRANSIT_AFTER_S if po["method"] == "instant" else IN_TRANSIT_AFTER_S
    return int(po["created"]) + wait


def instant_fee(em: Emulator, amount: int) -> int:
    """Stripe's Instant Payout fee: a percentage of the amount, with a minimum."""
    pricing = em.config.pricing
    fee = (amount * pricing.instant_payout_bp + 5_000) // 10_000
    return max(fee, pricing.instant_payout_min)


# -- the payout object ------------------------------------------------------------------------
def _new_payout(
    ctx: Ctx,
    po_id: str,
    *,
    amount: int,
    currency: str,
    ext: Obj,
    bt_id: str,
    automatic: bool,
    method: str,
    now: int,
    arrival: int,
) -> Obj:
    return {
        "id": po_id,
        "object": "payout",
        "amount": amount,
        "application_fee": None,
        "application_fee_amount": None,
        "arrival_date": arrival,
        "automatic": automatic,
        "balance_transaction": bt_id,
        "created": now,
        "currency": currency,
        "description": "STRIPE PAYOUT" if automatic else None,
        "destination": ext["id"],
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "livemode": False,
        "metadata": {},
        "method": method,
        "original_payout": None,
        "payout_method": None,
        "reconciliation_status": "in_progress" if automatic else "not_applicable",
        "reversed_by": None,
        "source_type": "card",
        "statement_descriptor": None,
        "status": "pending",
        "trace_id": {"status": "pending", "value": None},
        "type": "card" if ext["object"] == "card" else "bank_account",
    }


def _create(
    ctx: Ctx,
    *,
    amount: int,
    currency: str,
    bank: Obj,
    automatic: bool,
    method: str = "standard",
    description: str | None = None,
    metadata: dict[str, str] | None = None,
    statement_descriptor: str | None = None,
    source_type: str = "card",
    at: int | None = None,
) -> Obj:
    """Create a payout; `at` is the moment it is made (a timer's, when the clock jumped)."""
    po_id = ctx.new_id("po")
    now = ctx.now if at is None else at
    fee_details: list[dict[str, Any]] = []
    if method == "instant":
        fee = instant_fee(ctx.em, amount)
        _advance(ctx, currency, amount + fee)
        fee_details = [money.fee_detail(fee, currency, description="Instant Payout fee")]
        arrival = now + INSTANT_ARRIVAL_S
    else:
        arrival = (now // DAY + ctx.config.payout_delay_days) * DAY
    bt = money.post_balance_transaction(
        ctx,
        amount=-amount,
        currency=currency,
        type="payout",
        reporting_category="payout",
        source=po_id,
        description="STRIPE PAYOUT",
        fee_details=fee_details,
    )
    ctx.store.add_index(ctx.account, "balance_transaction", "payout", po_id, bt["id"])
    po = _new_payout(
        ctx, po_id, amount=amount, currency=currency, ext=bank, bt_id=bt["id"],
        automatic=automatic, method=method, now=now, arrival=arrival,
    )  # fmt: skip
    if description is not None:
        po["description"] = description
    po["metadata"] = metadata or {}
    po["statement_descriptor"] = statement_descriptor
    po["source_type"] = source_type
    ctx.insert(po, ("destination",))
    ctx.em.schedule(_in_transit_at(po), _PROGRESS, po_id)
    ctx.emit("payout.created", po)
    return po


def _advance(ctx: Ctx, currency: str, needed: int) -> None:
    """Pay out pending card funds now: Stripe advances the shortfall and takes it back from
    the funds when they settle."""
    bal = money.balance_of(ctx.em, ctx.account, currency)
    shortfall = needed - max(bal["available"], 0)
    if shortfall <= 0:
        return
    pending: list[tuple[int, int]] = []
    for bt_id in ctx.store.iter_ids(ctx.account, "balance_transaction"):
        bt = ctx.store.get(bt_id, kind="balance_transaction")
        if bt is not None and bt["status"] == "pending" and bt["currency"] == currency:
            pending.append((int(bt["available_on"]), int(bt["net"])))
    pending.sort()
    covered, settles = 0, ctx.now
    for available_on, net in pending:
        covered += net
        settles = available_on
        if covered >= shortfall:
            break
    money.post_balance_transaction(
        ctx, amount=shortfall, currency=currency, type="advance", reporting_category="advance",
        source=None, description="Instant Payout advance",
    )  # fmt: skip
    money.post_balance_transaction(
        ctx, amount=-shortfall, currency=currency, type="advance_funding",
        reporting_category="advance_funding", source=None,
        description="Instant Payout advance funding", available_on=settles,
    )  # fmt: skip


def _bank_for(em: Emulator, account: str, currency: str) -> Obj | None:
    bank = connect.default_bank_account(em, account, currency)
    if (
        bank is None
        and account == em.config.platform_account
        and currency == em.config.default_currency
    ):
        bank = connect.ensure_platform_bank(em)
    return bank


def _failure_for(em: Emulator, po: Obj) -> str | None:
    if po["original_payout"] is not None:
        return None  # a reversal debits the account the payout reached
    dest = em.store.get(po["destination"])
    return connect.bank_failure(em, dest)


def _returns_later(em: Emulator, code: str) -> bool:
    return em.config.payout_return_days > 0 and code not in ext_mod.BALANCE_FAILURES


@timer(_PROGRESS)
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
        em.schedule(max(po["arrival_date"], em.now_f()), _PROGRESS, po_id)
        return
    code = _failure_for(em, po)
    if po["status"] == "paid":
        returned_at = po["arrival_date"] + em.config.payout_return_days * DAY
        if code is not None and _returns_later(em, code) and em.now() >= returned_at:
            _fail(ctx, po, code)
        return
    if po["status"] != "in_transit":
        return
    if em.now() < po["arrival_date"]:
        em.schedule(po["arrival_date"], _PROGRESS, po_id)
        return
    if code is None:
        _paid(ctx, po, validated=True)
    elif _returns_later(em, code):
        _paid(ctx, po, validated=False)
        em.schedule(po["arrival_date"] + em.config.payout_return_days * DAY, _PROGRESS, po_id)
    else:
        _fail(ctx, po, code)


def _paid(ctx: Ctx, po: Obj, validated: bool) -> None:
    po["status"] = "paid"
    po["trace_id"] = {"status": "supported", "value": f"TRACE{po['id'][-12:].upper()}"}
    if po["automatic"]:
        po["reconciliation_status"] = "completed"
    ctx.store.save(po)
    ctx.emit("payout.paid", po)
    if po["automatic"]:
        ctx.emit("payout.reconciliation_completed", po)
    if validated and po["original_payout"] is None:
        connect.mark_validated(ctx.em, ctx.account, po["destination"])


def _fail(ctx: Ctx, po: Obj, code: str) -> None:
    """The bank (or Stripe) could not pay: return the funds (and an Instant Payout's fee)."""
    bt = ctx.store.get(po["balance_transaction"], kind="balance_transaction")
    fee = int(bt["fee"]) if bt is not None else 0
    refund_fees = [money.fee_detail(-fee, po["currency"], description="Instant Payout fee")]
    failure_bt = money.post_balance_transaction(
        ctx,
        amount=po["amount"],
        currency=po["currency"],
        type="payout_failure",
        reporting_category="payout_reversal",
        source=po["id"],
        description="Payout failure",
        fee_details=refund_fees if fee else None,
    )
    po["status"] = "failed"
    po["failure_code"] = code
    po["failure_message"] = ext_mod.FAILURE_MESSAGES[code]
    po["failure_balance_transaction"] = failure_bt["id"]
    po["trace_id"] = {"status": "unsupported", "value": None}
    ctx.store.save(po)
    ctx.emit("payout.failed", po)
    if code not in ext_mod.BALANCE_FAILURES:
        connect.mark_errored(ctx.em, ctx.account, po["destination"])


@control("POST", "/_emulator/payouts/{po_id}/fail")
def fail_control(app: EmulatorApp, body: dict[str, Any], po_id: str) -> Obj:
    """Fail one payout now, as a bank returning it would (emulator only).

    JSON body: {"failure_code": "account_frozen"} (any payout failure code Stripe
    documents). A pending or in-transit payout fails at once; a paid one turns failed (the
    "paid, then failed" Stripe warns about). Answers the payout.
    """
    em = app.em
    po = em.store.get(po_id, kind="payout")
    account = em.store.owner(po_id)
    if po is None or account is None:
        raise ValueError(f"no such payout {po_id!r}")
    code = body.get("failure_code")
    if code not in ext_mod.FAILURE_MESSAGES:
        raise ValueError(f"failure_code must be one of {sorted(ext_mod.FAILURE_MESSAGES)}")
    if po["status"] not in ("pending", "in_transit", "paid") or po["original_payout"]:
        raise ValueError(f"a payout with status {po['status']} cannot fail")
    _fail(_ctx_for(em, account), po, str(code))
    found = em.store.get(po_id, kind="payout")
    assert found is not None
    return found


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
        if bank is None or bank.get("status") == "errored":
            continue  # Stripe stops scheduled payouts until the external account is fixed
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
def _payouts_not_allowed() -> Exception:
    return invalid(
        "Payouts have been disabled on the connected account. Check the connected account's "
        "status to see if any additional information needs to be provided, or if payouts have "
        "been disabled for another reason.",
        code="payouts_not_allowed",
    )


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
    if not ctx.is_platform:
        acct = ctx.store.get(ctx.account, kind="account")
        if acct is None or not acct.get("payouts_enabled"):
            raise _payouts_not_allowed()
    if destination is not None:
        found = ext_mod.get_external(ctx.em, ctx.account, destination)
        if found is None:
            raise invalid(
                f"No such external account: '{destination}'", "destination", "resource_missing"
            )
        if found["currency"] != currency:
            raise invalid(
                f"The currency of the destination bank account ({found['currency']}) does not "
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
    bal = money.balance_of(ctx.em, ctx.account, currency)
    if method == "instant":
        if ctx.is_platform:  # only connected accounts are set up for Instant Payouts here
            raise invalid("Instant Payouts are not available for this account.", "method")
        if not ext_mod.instant_eligible(bank):
            what = "card" if bank["object"] == "card" else "bank account"
            raise invalid(
                f"This {what} is not eligible for Instant Payouts. Try a debit card from a "
                "supported bank.",
                "destination",
                code="instant_payouts_unsupported",
            )
        instant = balance.instant_available(ctx.em, ctx.account, currency)
        if amount + instant_fee(ctx.em, amount) > instant:
            raise balance.insufficient_funds(payout=True)
    elif bal["available"] < amount:
        raise balance.insufficient_funds(payout=True)
    return _create(
        ctx,
        amount=amount,
        currency=currency,
        bank=bank,
        automatic=False,
        method=method,
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
    if po["method"] == "instant":
        raise invalid("Instant payouts cannot be canceled.", "payout")
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


@route("POST", "/v1/payouts/{id}/reverse", perm="payouts")
def reverse(ctx: Ctx, p: Params, id: str) -> Obj:
    po = ctx.get(id, "payout")
    metadata = p.metadata()
    p.done()
    if po["status"] == "pending" and not po["automatic"]:
        raise invalid(
            "This payout is pending: cancel it with /v1/payouts/:id/cancel instead.", "payout"
        )
    if po["original_payout"] is not None:
        raise invalid("A payout reversal cannot itself be reversed.", "payout")
    if po["reversed_by"] is not None:
        raise invalid(f"This payout has already been reversed by {po['reversed_by']}.", "payout")
    if po["status"] != "paid":
        raise invalid(
            f"This payout cannot be reversed because it has a status of {po['status']}. Only "
            "paid payouts can be reversed.",
            "payout",
        )
    dest = ext_mod.get_external(ctx.em, ctx.account, po["destination"])
    if (
        ctx.is_platform
        or dest is None
        or dest["object"] != "bank_account"
        or dest["country"] not in ("US", "CA")
    ):
        raise invalid(
            "At this time, you can only reverse payouts for connected accounts to US and "
            "Canadian bank accounts.",
            "payout",
        )
    rev_id = ctx.new_id("po")
    bt = money.post_balance_transaction(
        ctx,
        amount=po["amount"],
        currency=po["currency"],
        type="payout",
        reporting_category="payout_reversal",
        source=rev_id,
        description="STRIPE PAYOUT REVERSAL",
    )
    ctx.store.add_index(ctx.account, "balance_transaction", "payout", rev_id, bt["id"])
    rev = _new_payout(
        ctx, rev_id, amount=po["amount"], currency=po["currency"], ext=dest, bt_id=bt["id"],
        automatic=False, method="standard", now=ctx.now,
        arrival=(ctx.now // DAY + ctx.config.payout_delay_days) * DAY,
    )  # fmt: skip
    rev["original_payout"] = po["id"]
    rev["metadata"] = merge_metadata({}, metadata)
    ctx.insert(rev, ("destination",))
    ctx.em.schedule(_in_transit_at(rev), _PROGRESS, rev_id)
    ctx.emit("payout.created", rev)
    po["reversed_by"] = rev_id
    ctx.save(po)
    ctx.emit("payout.updated", po, {"reversed_by": None})
    return rev


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
