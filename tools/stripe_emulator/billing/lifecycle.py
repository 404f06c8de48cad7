"""A subscription's life (research section A.1):

    create -+- trial -------------------> trialing --trial end--> active | past_due | paused
            +- first invoice paid ------> active                   | canceled (missing PM)
            +- payment fails/pending ---> incomplete --paid within 23 h--> active
            |                                        '--23 h--> incomplete_expired (void)
            '- error_if_incomplete -----> 402, nothing created
    active --renewal payment fails--> past_due --paid--> active
    past_due --retries exhausted--> canceled | unpaid | past_due (billing.end_action)
    unpaid --latest invoice paid--> active
    any live status --cancel now / at period end--> canceled
    active --pause--> paused --resume--> active (or past_due)

Periods are counted from `billing_cycle_anchor` on each item (Basil: `current_period_*`
live on the items). Licensed items are billed in advance, metered ones in arrears from
their meter. Renewals, trial ends, `trial_will_end` (3 days before), `invoice.upcoming`,
scheduled cancellations, expiry of incomplete subscriptions and pending updates all wake
the subscription on its own timeline (`timeline`).

Prorations are computed to the second: the share f = (end - t) / (end - start) of the
current period left at t (`proration_date`, default now) credits the old amount times f
and debits the new amount times f. Billing modes classic and flexible agree here: the
emulator's prices never change amount and prorations are not discounted, so the amount
originally debited (flexible) equals the current price's (classic).
"""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal
from typing import Any

from .. import ids
from ..errors import CardError, invalid
from ..state import Ctx
from ..store import Obj
from . import collection, invoicing, timeline
from .amounts import price_amount, prorate, proration_fraction
from .calendar import DAY, fmt_date, next_boundary, shift

__all__ = [
    "SUB",
    "cancel_now",
    "charge_precheck",
    "new_item",
    "on_invoice_failed",
    "on_invoice_paid",
    "on_retries_exhausted",
    "period_of",
    "reschedule",
    "retries_invoice",
    "sub_view",
]

SUB = "subscription"
LIVE = ("trialing", "active", "past_due", "unpaid")
TIMES = "\u00d7"  # the multiplication sign of Stripe's line descriptions ("2 x Pro")


def sub_view(sub: Obj) -> Obj:
    return {k: v for k, v in sub.items() if k[0] != "_"}


def emit(ctx: Ctx, type_: str, sub: Obj, previous: dict[str, Any] | None = None) -> None:
    ctx.emit(type_, sub_view(sub), previous)


def items_of(sub: Obj) -> list[Obj]:
    items: list[Obj] = sub["items"]["data"]
    return items


def period_of(sub: Obj) -> tuple[int, int]:
    first = items_of(sub)[0]
    return int(first["current_period_start"]), int(first["current_period_end"])


def _recurring(sub: Obj) -> tuple[str, int]:
    rec = items_of(sub)[0]["price"]["recurring"]
    return rec["interval"], int(rec["interval_count"])


def is_metered(item: Obj) -> bool:
    return bool(item["price"]["recurring"].get("usage_type") == "metered")


# -- items ---------------------------------------------------------------------------------------


def new_item(
    ctx: Ctx,
    sub_id: str,
    price: Obj,
    quantity: int | None,
    *,
    metadata: dict[str, str] | None,
    tax_rates: list[Obj],
    period: tuple[int, int],
    taken: Collection[str] = (),
) -> Obj:
    """A subscription item. Items live inside their subscription: an item's id carries its
    subscription's (`si_` + the subscription id's random part + 3 characters), so
    `subscription_of_item` finds it without a record of its own."""
    from ..resources.common import public
    from ..resources.prices import plan_view

    price_view = public(price)
    item_id = "si_" + sub_id.partition("_")[2] + ids.new_id("x", 3)[2:]
    while item_id in taken:
        item_id = "si_" + sub_id.partition("_")[2] + ids.new_id("x", 3)[2:]
    item = {
        "id": item_id,
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": ctx.now,
        "current_period_end": period[1],
        "current_period_start": period[0],
        "discounts": [],
        "metadata": metadata or {},
        "plan": plan_view(price_view),
        "price": price_view,
        "quantity": None if is_metered({"price": price_view}) else (quantity or 1),
        "subscription": sub_id,
        "tax_rates": tax_rates,
    }
    return item


def subscription_of_item(item_id: str) -> str | None:
    """The subscription id an item id carries (None if it is not an item id)."""
    if not item_id.startswith("si_") or len(item_id) < 7:
        return None
    return "sub_" + item_id[3:-3]


def item_amount(ctx: Ctx, item: Obj, quantity: int | None = None) -> int:
    from ..resources.prices import tiers_of

    price = item["price"]
    qty = item["quantity"] if quantity is None else quantity
    return price_amount(price, qty or 0, tiers_of(ctx, price))


_NAMES: dict[str, str] = {}


def _product_name(ctx: Ctx, product_id: str) -> str:
    name = _NAMES.get(product_id)
    if name is None:
        product = ctx.store.get(product_id)
        name = str((product or {}).get("name") or product_id)
        if len(_NAMES) > 10_000:
            _NAMES.clear()
        _NAMES[product_id] = name
    return name


def _per(item: Obj) -> str:
    rec = item["price"]["recurring"]
    count = int(rec["interval_count"])
    return f"{rec['interval']}" if count == 1 else f"every {count} {rec['interval']}s"


def describe(ctx: Ctx, item: Obj, quantity: Decimal | int | None = None) -> str:
    qty = item["quantity"] if quantity is None else quantity
    name = _product_name(ctx, item["price"]["product"])
    price = item["price"]
    if price["billing_scheme"] == "per_unit" and price["unit_amount"] is not None:
        at = invoicing.money(int(price["unit_amount"]), price["currency"])
        return f"{qty or 0} {TIMES} {name} (at {at} / {_per(item)})"
    return f"{qty or 0} {TIMES} {name} (Tier pricing / {_per(item)})"


def _proration_text(ctx: Ctx, item: Obj, credit: bool, at: int) -> str:
    name = _product_name(ctx, item["price"]["product"])
    qty = item["quantity"] or 1
    what = name if qty == 1 else f"{qty} {TIMES} {name}"
    return f"{'Unused' if credit else 'Remaining'} time on {what} after {fmt_date(at)}"


# -- invoices of a subscription -------------------------------------------------------------------


def _new_sub_invoice(ctx: Ctx, sub: Obj, cus: Obj, reason: str, period: tuple[int, int]) -> Obj:
    paused = (sub.get("pause_collection") or {}).get("behavior")
    auto = sub["status"] != "unpaid" and paused != "keep_as_draft"
    inv = invoicing.new_invoice(
        ctx,
        cus,
        billing_reason=reason,
        currency=sub["currency"],
        auto_advance=auto,
        collection_method=sub["collection_method"],
        sub=sub,
        days_until_due=sub["days_until_due"],
        description=sub["description"],
        default_payment_method=None,
        default_source=None,
        default_tax_rates=[r["id"] for r in sub["default_tax_rates"]],
        discounts=_live_discounts(ctx, sub),
        automatic_tax=sub["automatic_tax"]["enabled"],
        period=period,
    )
    if paused:
        inv["_paused"] = paused
    return inv


def _live_discounts(ctx: Ctx, sub: Obj) -> list[str]:
    from ..resources.coupons import discount_applies

    out = []
    for discount_id in sub["discounts"]:
        discount = ctx.find(discount_id, "discount")
        if discount is not None and discount_applies(discount, ctx.now):
            out.append(discount_id)
    return out


def _drop_spent_discounts(ctx: Ctx, sub: Obj, inv: Obj) -> None:
    """A `once` coupon's discount goes after the first invoice it applied to; an ended
    repeating one after its end."""
    from ..resources.coupons import coupon_of, discount_applies

    keep = []
    for discount_id in sub["discounts"]:
        discount = ctx.find(discount_id, "discount")
        if discount is None:
            continue
        spent = coupon_of(discount)["duration"] == "once" and discount_id in inv["discounts"]
        if spent or not discount_applies(discount, ctx.now):
            ctx.emit(
                "customer.discount.deleted", {k: v for k, v in discount.items() if k[0] != "_"}
            )
            continue
        keep.append(discount_id)
    sub["discounts"] = keep


def _store_invoice(ctx: Ctx, sub: Obj, inv: Obj) -> Obj:
    """Store a new subscription invoice (invoice.created); the caller saves `sub`."""
    invoicing.recompute(ctx, inv)
    if inv["auto_advance"] and inv["automatically_finalizes_at"] is not None:
        timeline.set_wake(ctx, inv, inv["automatically_finalizes_at"])
    ctx.insert(inv, ("customer", "_sub"))
    sub["latest_invoice"] = inv["id"]
    if sub["discounts"]:
        _drop_spent_discounts(ctx, sub, inv)
    invoicing.emit(ctx, "invoice.created", inv)
    return inv


def _item_lines(
    ctx: Ctx,
    sub: Obj,
    inv: Obj,
    *,
    advance: tuple[int, int] | None,
    arrears: tuple[int, int] | None,
) -> None:
    """Licensed items for the `advance` period, metered usage for the `arrears` one."""
    from ..resources.meters import usage_quantity

    for item in items_of(sub):
        if is_metered(item):
            if arrears is None:
                continue
            meter = item["price"]["recurring"]["meter"]
            qty = usage_quantity(ctx, meter, sub["customer"], arrears[0], arrears[1])
            qty = max(qty, Decimal(0))
            line = invoicing.sub_line(
                inv,
                sub,
                item,
                amount=item_amount_decimal(ctx, item, qty),
                quantity=qty,
                period=arrears,
                description=describe(ctx, item, qty),
                meter=meter,
            )
        elif advance is not None:
            line = invoicing.sub_line(
                inv,
                sub,
                item,
                amount=item_amount(ctx, item),
                quantity=item["quantity"],
                period=advance,
                description=describe(ctx, item),
            )
        else:
            continue
        inv["lines"]["data"].append(line)


def item_amount_decimal(ctx: Ctx, item: Obj, qty: Decimal) -> int:
    from ..resources.prices import tiers_of

    return price_amount(item["price"], qty, tiers_of(ctx, item["price"]))


def _attach_pending(ctx: Ctx, sub: Obj, inv: Obj) -> None:
    items = invoicing.pending_items(ctx, sub["customer"], sub["id"], with_free=True)
    if items:
        invoicing.attach_items(ctx, inv, items)


# -- creation ----------------------------------------------------------------------------------


def charge_precheck(ctx: Ctx, pm_id: str | None) -> None:
    """error_if_incomplete: refuse (402, nothing created) what the card would refuse."""
    from .. import cards
    from ..resources import payment_methods as pms

    if pm_id is None:
        raise invalid(
            "This customer has no attached payment source or default payment method. Please "
            "consider adding a default payment method.",
        )
    pm = ctx.find(pm_id, "payment_method")
    number = cards.PM_CARDS.get(pm_id)
    spec = pms.spec_of(pm) if pm is not None else cards.lookup(number or "4242424242424242")
    code = "fraudulent" if spec.blocked else spec.decline
    if spec.three_ds and not (spec.three_ds_setup_once and pm and pms.is_set_up(ctx, pm)):
        code = "authentication_required"
    if code is not None:
        decline = cards.DECLINES[code]
        raise CardError(decline.message, code=decline.code, decline_code=decline.decline_code)


def first_invoice(
    ctx: Ctx, sub: Obj, cus: Obj, proration_behavior: str, add_items: list[Obj]
) -> Obj:
    """The creation invoice: a $0 one for a trial, else the first period (a prorated stub
    up to a future anchor), pending items and add_invoice_items; finalized at once."""
    start, end = period_of(sub)
    inv = _new_sub_invoice(ctx, sub, cus, "subscription_create", (start, end))
    inv["auto_advance"] = True
    inv["automatically_finalizes_at"] = None
    if sub["status"] == "trialing":
        for item in items_of(sub):
            if is_metered(item):
                continue
            name = _product_name(ctx, item["price"]["product"])
            inv["lines"]["data"].append(
                invoicing.sub_line(
                    inv,
                    sub,
                    item,
                    amount=0,
                    quantity=item["quantity"],
                    period=(start, end),
                    description=f"Trial period for {name}",
                )
            )
    else:
        interval, count = _recurring(sub)
        anchor = sub["billing_cycle_anchor"]
        full_start = shift(end, interval, -count)
        stub = anchor > start and full_start < start  # a short first period up to the anchor
        for item in items_of(sub):
            if is_metered(item):
                continue
            amount = item_amount(ctx, item)
            if stub:
                if proration_behavior == "none":
                    amount = 0
                else:
                    amount = prorate(amount, proration_fraction(full_start, end, start))
            inv["lines"]["data"].append(
                invoicing.sub_line(
                    inv,
                    sub,
                    item,
                    amount=amount,
                    quantity=item["quantity"],
                    period=(start, end),
                    description=describe(ctx, item),
                )
            )
    invoicing.attach_items(ctx, inv, add_items)
    _attach_pending(ctx, sub, inv)
    return _store_invoice(ctx, sub, inv)


def activate_first(ctx: Ctx, sub: Obj, inv: Obj, payment_behavior: str) -> Obj:
    """Finalize the creation invoice and pay it per payment_behavior."""
    inv = invoicing.finalize(ctx, inv, attempt_later=False)
    if inv["status"] == "open" and inv["collection_method"] == "charge_automatically":
        if payment_behavior in ("allow_incomplete", "error_if_incomplete"):
            collection.attempt_payment(ctx, inv, automatic=True)
    elif inv["status"] == "open":  # send_invoice: active whatever the invoice does
        fresh = ctx.get(sub["id"], SUB)
        if fresh["status"] == "incomplete":
            _set_status(ctx, fresh, "active")
    fresh = ctx.get(sub["id"], SUB)
    reschedule(ctx, fresh)
    ctx.save(fresh)
    return fresh


# -- status ----------------------------------------------------------------------------------


def _set_status(ctx: Ctx, sub: Obj, status: str, extra: dict[str, Any] | None = None) -> None:
    before: dict[str, Any] = {"status": sub["status"]}
    sub["status"] = status
    for key, value in (extra or {}).items():
        before[key] = sub.get(key)
        sub[key] = value
    reschedule(ctx, sub)
    ctx.save(sub)
    emit(ctx, "customer.subscription.updated", sub, before)


def _sub_of(ctx: Ctx, inv: Obj) -> Obj | None:
    sub_id = inv.get("_sub")
    return ctx.find(sub_id, SUB) if sub_id else None


def retries_invoice(ctx: Ctx, inv: Obj) -> bool:
    """The first invoice of an incomplete subscription is not retried: it expires."""
    sub = _sub_of(ctx, inv)
    return not (
        sub is not None
        and inv["billing_reason"] == "subscription_create"
        and sub["status"] in ("incomplete", "incomplete_expired")
    )


def on_invoice_paid(ctx: Ctx, inv: Obj) -> None:
    from . import changes

    sub = _sub_of(ctx, inv)
    if sub is None:
        return
    if sub.get("pending_update") and sub.get("_pending_invoice") == inv["id"]:
        changes.apply_pending_update(ctx, sub)
        sub = ctx.get(sub["id"], SUB)
    latest = sub["latest_invoice"] == inv["id"]
    if sub["status"] == "incomplete" and latest:
        _set_status(ctx, sub, "active")
    elif sub["status"] in ("past_due", "unpaid") and latest:
        _set_status(ctx, sub, "active")


def on_invoice_failed(ctx: Ctx, inv: Obj, exhausted: bool) -> None:
    sub = _sub_of(ctx, inv)
    if sub is None or sub["status"] not in ("active", "trialing"):
        return  # an incomplete subscription stays so until it expires
    if sub.get("_staging") or sub.get("_pending_invoice") == inv["id"]:
        return  # a pending update's invoice: the subscription itself is unchanged
    if sub["latest_invoice"] == inv["id"]:
        _set_status(ctx, sub, "past_due")


def on_retries_exhausted(ctx: Ctx, inv: Obj) -> None:
    """billing.end_action, unless a later invoice of the subscription was paid."""
    sub = _sub_of(ctx, inv)
    if sub is None or sub["status"] not in ("past_due", "active", "unpaid"):
        return
    if sub["latest_invoice"] != inv["id"]:
        latest = ctx.find(sub["latest_invoice"], invoicing.INVOICE)
        if latest is not None and latest["status"] == "paid":
            return
    action = ctx.config.billing.end_action
    if action == "cancel":
        cancel_now(ctx, sub, reason="payment_failed")
    elif action == "unpaid" and sub["status"] != "unpaid":
        _set_status(ctx, sub, "unpaid")


# -- waking -------------------------------------------------------------------------------------


def reschedule(ctx: Ctx, sub: Obj) -> None:
    """Set the next moment something is due for this subscription (the caller saves)."""
    cfg = ctx.config.billing
    status = sub["status"]
    due: list[int] = []
    if status == "incomplete":
        due.append(int(sub["created"]) + cfg.incomplete_expires_s)
    elif status in LIVE:
        _start, end = period_of(sub)
        if status == "trialing" and sub.get("_twe") != sub["trial_end"]:
            due.append(max(int(sub["trial_end"]) - cfg.trial_will_end_s, ctx.now))
        days = cfg.upcoming_renewal_days
        if (
            days is not None
            and sub["collection_method"] == "charge_automatically"
            and sub.get("_upcoming") != end
            and end - days * DAY > ctx.now
            and _renews(sub, end)
        ):
            due.append(end - days * DAY)
        due.append(end)
        if sub["cancel_at"] is not None:
            due.append(int(sub["cancel_at"]))
        resumes = (sub.get("pause_collection") or {}).get("resumes_at")
        if resumes is not None:
            due.append(int(resumes))
    if sub.get("pending_update"):
        due.append(int(sub["pending_update"]["expires_at"]))
    timeline.set_wake(ctx, sub, min(due) if due else None)


def _renews(sub: Obj, end: int) -> bool:
    """Whether the period ending at `end` is followed by another (not canceled by then)."""
    return not sub["cancel_at_period_end"] and not (
        sub["cancel_at"] is not None and sub["cancel_at"] <= end
    )


def _wake(ctx: Ctx, sub: Obj) -> None:
    from . import changes

    now = ctx.now
    cfg = ctx.config.billing
    status = sub["status"]
    if sub.get("pending_update") and now >= sub["pending_update"]["expires_at"]:
        changes.expire_pending_update(ctx, sub)
        sub = ctx.get(sub["id"], SUB)
    if status == "incomplete":
        if now >= int(sub["created"]) + cfg.incomplete_expires_s:
            _expire_incomplete(ctx, sub)
        return
    if status not in LIVE:
        return
    _start, end = period_of(sub)
    if status == "trialing" and sub.get("_twe") != sub["trial_end"]:
        if now >= int(sub["trial_end"]) - cfg.trial_will_end_s:
            sub["_twe"] = sub["trial_end"]  # saved below
            emit(ctx, "customer.subscription.trial_will_end", sub)
    resumes = (sub.get("pause_collection") or {}).get("resumes_at")
    if resumes is not None and now >= resumes:
        before = {"pause_collection": sub["pause_collection"]}
        sub["pause_collection"] = None
        ctx.save(sub)
        emit(ctx, "customer.subscription.updated", sub, before)
    days = cfg.upcoming_renewal_days
    if (
        days is not None
        and sub.get("_upcoming") != end
        and now >= end - days * DAY
        and now < end
        and sub["collection_method"] == "charge_automatically"
        and _renews(sub, end)
    ):
        sub["_upcoming"] = end  # saved below
        _upcoming(ctx, sub)
    if sub["cancel_at"] is not None and now >= sub["cancel_at"] and sub["cancel_at"] <= end:
        cancel_now(ctx, sub, reason="cancellation_requested", at=int(sub["cancel_at"]))
        return
    if now >= end:
        if sub["cancel_at_period_end"]:
            cancel_now(ctx, sub, reason="cancellation_requested", at=end, final_usage=True)
            return
        if status == "trialing":
            _end_trial(ctx, sub)
        else:
            _renew(ctx, sub)
        return
    reschedule(ctx, sub)
    ctx.save(sub)


timeline.WAKERS[SUB] = _wake


def _upcoming(ctx: Ctx, sub: Obj) -> None:
    """invoice.upcoming: the next renewal's invoice, previewed (it has no id)."""
    cus = ctx.find(sub["customer"], "customer")
    if cus is None:
        return
    start, end = period_of(sub)
    interval, count = _recurring(sub)
    nxt = (end, next_boundary(sub["billing_cycle_anchor"], interval, count, end))
    inv = _new_sub_invoice(ctx, sub, cus, "upcoming", nxt)
    usage = None if sub["status"] == "trialing" else (start, end)  # a trial's usage is free
    _item_lines(ctx, sub, inv, advance=nxt, arrears=usage)
    for ii in invoicing.pending_items(ctx, sub["customer"], sub["id"], with_free=True):
        inv["lines"]["data"].append(invoicing.item_line(inv, ii))
    invoicing.recompute(ctx, inv, cus)
    preview = invoicing.view(inv)
    preview["id"] = None
    ctx.emit("invoice.upcoming", preview)


def _expire_incomplete(ctx: Ctx, sub: Obj) -> None:
    inv = ctx.find(sub["latest_invoice"], invoicing.INVOICE)
    if inv is not None and inv["status"] == "open":
        invoicing.void(ctx, inv)
        sub = ctx.get(sub["id"], SUB)
    _set_status(ctx, sub, "incomplete_expired", {"canceled_at": ctx.now, "ended_at": ctx.now})


def _advance_period(ctx: Ctx, sub: Obj, start: int, end: int) -> dict[str, Any]:
    old = [dict(item) for item in items_of(sub)]
    for item in items_of(sub):
        item["current_period_start"] = start
        item["current_period_end"] = end
    return {
        "items": {
            "data": [
                {k: i[k] for k in ("id", "current_period_end", "current_period_start")} for i in old
            ]
        }
    }


def _renew(ctx: Ctx, sub: Obj) -> None:
    if sub["status"] == "paused":
        return
    cus = ctx.get(sub["customer"], "customer")
    old_start, old_end = period_of(sub)
    interval, count = _recurring(sub)
    new_end = next_boundary(sub["billing_cycle_anchor"], interval, count, old_end)
    before = _advance_period(ctx, sub, old_end, new_end)
    reschedule(ctx, sub)
    emit(ctx, "customer.subscription.updated", sub, before)
    inv = _new_sub_invoice(ctx, sub, cus, "subscription_cycle", (old_end, new_end))
    _item_lines(ctx, sub, inv, advance=(old_end, new_end), arrears=(old_start, old_end))
    _attach_pending(ctx, sub, inv)
    _store_invoice(ctx, sub, inv)
    ctx.save(sub)


def _end_trial(ctx: Ctx, sub: Obj) -> None:
    behavior = sub["trial_settings"]["end_behavior"]["missing_payment_method"]
    if behavior != "create_invoice" and sub["collection_method"] == "charge_automatically":
        if collection.payer_for(ctx, sub["customer"], sub) is None:
            if behavior == "cancel":
                cancel_now(ctx, sub, reason="cancellation_requested", at=int(sub["trial_end"]))
            else:
                _pause(ctx, sub, credit=False)
            return
    cus = ctx.get(sub["customer"], "customer")
    trial_end = int(sub["trial_end"])
    interval, count = _recurring(sub)
    end = next_boundary(sub["billing_cycle_anchor"], interval, count, trial_end)
    before = _advance_period(ctx, sub, trial_end, end)
    before["status"] = "trialing"
    sub["status"] = "active"
    reschedule(ctx, sub)
    emit(ctx, "customer.subscription.updated", sub, before)
    inv = _new_sub_invoice(ctx, sub, cus, "subscription_cycle", (trial_end, end))
    _item_lines(ctx, sub, inv, advance=(trial_end, end), arrears=None)
    _attach_pending(ctx, sub, inv)
    _store_invoice(ctx, sub, inv)
    ctx.save(sub)


# -- cancel, pause, resume ----------------------------------------------------------------------


def _stop_collection(ctx: Ctx, sub: Obj) -> None:
    """A canceled subscription's open invoices are no longer collected automatically; an
    incomplete one's first invoice is voided."""
    found, _ = ctx.store.page(
        ctx.account,
        invoicing.INVOICE,
        limit=100,
        where=("_sub", sub["id"]),
        predicate=lambda o: o["status"] in ("open", "draft"),
    )
    for inv in found:
        if sub["status"] == "incomplete" and inv["status"] == "open":
            invoicing.void(ctx, inv)
        elif inv["auto_advance"] or inv["next_payment_attempt"] is not None:
            before = {
                "auto_advance": inv["auto_advance"],
                "next_payment_attempt": inv["next_payment_attempt"],
            }
            inv["auto_advance"] = False
            inv["next_payment_attempt"] = None
            timeline.set_wake(ctx, inv, None)
            ctx.save(inv)
            invoicing.emit(ctx, "invoice.updated", inv, before)


def cancel_now(
    ctx: Ctx,
    sub: Obj,
    *,
    reason: str,
    at: int | None = None,
    prorate_credit: bool = False,
    invoice_now: bool = False,
    final_usage: bool = False,
    details: Obj | None = None,
) -> Obj:
    """End the subscription (at `at`, default now): customer.subscription.deleted."""
    from . import changes

    at = ctx.now if at is None else at
    if prorate_credit and sub["status"] in ("active", "past_due", "unpaid"):
        changes.proration_items(ctx, sub, [(item, None, None) for item in items_of(sub)], at)
    if (invoice_now or final_usage) and sub["status"] in LIVE:
        _final_invoice(ctx, sub, at, invoice_now)
        sub = ctx.get(sub["id"], SUB)
    _stop_collection(ctx, sub)
    sub = ctx.get(sub["id"], SUB)
    sub["status"] = "canceled"
    sub["canceled_at"] = sub["canceled_at"] or at
    sub["ended_at"] = at
    sub["cancel_at_period_end"] = False
    details = details or {}
    sub["cancellation_details"] = {
        "comment": details.get("comment", sub["cancellation_details"]["comment"]),
        "feedback": details.get("feedback", sub["cancellation_details"]["feedback"]),
        "reason": reason,
    }
    timeline.set_wake(ctx, sub, None)
    ctx.save(sub)
    emit(ctx, "customer.subscription.deleted", sub)
    return sub


def _final_invoice(ctx: Ctx, sub: Obj, at: int, with_pending: bool) -> None:
    """The last invoice: metered usage of the current period (and pending items)."""
    start, _ = period_of(sub)
    metered = [i for i in items_of(sub) if is_metered(i)]
    pending = invoicing.pending_items(ctx, sub["customer"], sub["id"], with_free=False)
    if not metered and not (with_pending and pending):
        return
    cus = ctx.get(sub["customer"], "customer")
    inv = _new_sub_invoice(ctx, sub, cus, "subscription_cycle", (start, at))
    _item_lines(ctx, sub, inv, advance=None, arrears=(start, at))
    if with_pending:
        invoicing.attach_items(ctx, inv, pending)
    inv["auto_advance"] = True
    inv["automatically_finalizes_at"] = None
    _store_invoice(ctx, sub, inv)
    ctx.save(sub)
    inv = invoicing.finalize(ctx, inv, attempt_later=False)
    if inv["status"] == "open" and inv["collection_method"] == "charge_automatically":
        collection.attempt_payment(ctx, inv, automatic=True)


def _pause(ctx: Ctx, sub: Obj, *, credit: bool) -> None:
    from . import changes

    before = {"status": sub["status"]}
    if credit and sub["status"] in ("active", "past_due"):
        changes.proration_items(ctx, sub, [(item, None, None) for item in items_of(sub)], ctx.now)
    sub["status"] = "paused"
    timeline.set_wake(ctx, sub, None)
    ctx.save(sub)
    emit(ctx, "customer.subscription.updated", sub, before)
    emit(ctx, "customer.subscription.paused", sub)


def pause(ctx: Ctx, sub: Obj, invoicing_behavior: str, credit: bool) -> Obj:
    from . import changes

    _pause(ctx, sub, credit=credit)
    sub = ctx.get(sub["id"], SUB)
    if invoicing_behavior == "invoice":
        changes.invoice_pending_now(ctx, sub, "subscription_update")
        sub = ctx.get(sub["id"], SUB)
    return sub


def resume(
    ctx: Ctx, sub: Obj, anchor_now: bool, proration_behavior: str, proration_date: int | None
) -> Obj:
    now = ctx.now
    interval, count = _recurring(sub)
    if anchor_now:
        sub["billing_cycle_anchor"] = now
        end = shift(now, interval, count)
    else:
        end = next_boundary(sub["billing_cycle_anchor"], interval, count, now)
    before = _advance_period(ctx, sub, now, end)
    before["status"] = "paused"
    sub["status"] = "active"
    reschedule(ctx, sub)
    ctx.save(sub)
    emit(ctx, "customer.subscription.updated", sub, before)
    emit(ctx, "customer.subscription.resumed", sub)
    cus = ctx.get(sub["customer"], "customer")
    inv = _new_sub_invoice(ctx, sub, cus, "subscription_update", (now, end))
    full_start = shift(end, interval, -count)
    for item in items_of(sub):
        if is_metered(item):
            continue
        amount = item_amount(ctx, item)
        if not anchor_now:
            at = proration_date or now
            amount = (
                0
                if proration_behavior == "none"
                else prorate(amount, proration_fraction(full_start, end, at))
            )
        inv["lines"]["data"].append(
            invoicing.sub_line(
                inv,
                sub,
                item,
                amount=amount,
                quantity=item["quantity"],
                period=(now, end),
                description=describe(ctx, item),
            )
        )
    _attach_pending(ctx, sub, inv)
    inv["auto_advance"] = True
    inv["automatically_finalizes_at"] = None
    _store_invoice(ctx, sub, inv)
    ctx.save(sub)
    inv = invoicing.finalize(ctx, inv, attempt_later=False)
    if inv["status"] == "open" and inv["collection_method"] == "charge_automatically":
        collection.attempt_payment(ctx, inv, automatic=True)
    return ctx.get(sub["id"], SUB)


# -- changes and prorations --------------------------------------------------------------------
