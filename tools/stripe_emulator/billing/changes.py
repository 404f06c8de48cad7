"""Changing a live subscription: item changes and their prorations, anchor resets, pending
updates.

Prorations are computed to the second: the share f = (end - t) / (end - start) of the
current period left at t (`proration_date`, default now) credits the old amount times f
and debits the new amount times f ("Unused time on ..." / "Remaining time on ..."), as
pending invoice items swept into the next invoice (create_prorations), invoiced at once
(always_invoice), or not at all (none). Billing modes classic and flexible agree here: the
emulator's prices never change amount and prorations are not discounted, so the amount
originally debited (flexible) equals the current price's (classic). A change of interval,
or billing_cycle_anchor=now, credits the rest of the old period and starts a new one, at
once invoiced. pending_if_incomplete invoices a change first and applies it only once paid
(customer.subscription.pending_update_applied), or lets it expire after 23 hours.
"""

from __future__ import annotations

from typing import Any

from ..state import Ctx
from ..store import Obj
from . import collection, invoicing, lifecycle
from .amounts import prorate, proration_fraction
from .calendar import shift
from .lifecycle import SUB, emit, is_metered, item_amount, items_of, period_of, reschedule

__all__ = [
    "Change",
    "apply_changes",
    "apply_pending_update",
    "build_proration_item",
    "expire_pending_update",
    "invoice_pending_now",
    "proration_amounts",
    "proration_items",
    "reset_anchor",
    "stage_pending_update",
]


Change = tuple[Obj | None, Obj | None, int | None]  # (old item, new item, new quantity)


def proration_amounts(
    ctx: Ctx, sub: Obj, changes: list[Change], at: int
) -> list[tuple[Obj, int, bool]]:
    """(item, amount, is credit) for item changes at `at`: a credit for the unused time of
    the old item, a debit for the remaining time of the new one."""
    start, end = period_of(sub)
    f = proration_fraction(start, end, at)
    out: list[tuple[Obj, int, bool]] = []
    if f <= 0:
        return out
    for old, new, new_qty in changes:
        if old is not None and not is_metered(old):
            credit = prorate(item_amount(ctx, old), f)
            if credit:
                out.append((old, -credit, True))
        if new is not None and not is_metered(new):
            target = dict(new)
            if new_qty is not None:
                target["quantity"] = new_qty
            debit = prorate(item_amount(ctx, target), f)
            if debit:
                out.append((target, debit, False))
    return out


def proration_items(ctx: Ctx, sub: Obj, changes: list[Change], at: int) -> list[Obj]:
    """Pending proration invoice items (invoiceitem.created) for item changes at `at`."""
    out = []
    for item, amount, credit in proration_amounts(ctx, sub, changes, at):
        ii = build_proration_item(ctx, sub, item, amount, at, credit=credit)
        ctx.insert(ii, ("customer", "invoice"))
        ctx.emit("invoiceitem.created", {k: v for k, v in ii.items() if k[0] != "_"})
        out.append(ii)
    return out


def build_proration_item(
    ctx: Ctx, sub: Obj, item: Obj, amount: int, at: int, *, credit: bool
) -> Obj:
    end = period_of(sub)[1]
    return {
        "id": ctx.new_id("ii"),
        "object": invoicing.ITEM,
        "amount": amount,
        "currency": sub["currency"],
        "customer": sub["customer"],
        "customer_account": None,
        "date": ctx.now,
        "description": lifecycle._proration_text(ctx, item, credit, at),
        "discountable": False,
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": {},
        "net_amount": amount,
        "parent": {
            "subscription_details": {"subscription": sub["id"], "subscription_item": item["id"]},
            "type": "subscription_details",
        },
        "period": {"end": end, "start": at},
        "pricing": {
            "price_details": {"price": item["price"]["id"], "product": item["price"]["product"]},
            "type": "price_details",
            "unit_amount_decimal": str(item["price"]["unit_amount_decimal"]),
        },
        "proration": True,
        "quantity": item["quantity"] or 1,
        "quantity_decimal": str(item["quantity"] or 1),
        "tax_rates": list(item.get("tax_rates") or []),
        "test_clock": sub.get("test_clock"),
        "_si": item["id"],
        "_behavior": item["price"]["tax_behavior"],
    }


def invoice_pending_now(ctx: Ctx, sub: Obj, reason: str) -> Obj | None:
    """always_invoice: the subscription's pending items, invoiced, finalized and collected
    now."""
    pending = invoicing.pending_items(ctx, sub["customer"], sub["id"], with_free=False)
    if not pending:
        return None
    cus = ctx.get(sub["customer"], "customer")
    _start, end = period_of(sub)
    inv = lifecycle._new_sub_invoice(ctx, sub, cus, reason, (ctx.now, end))
    invoicing.attach_items(ctx, inv, pending)
    inv["auto_advance"] = True
    inv["automatically_finalizes_at"] = None
    lifecycle._store_invoice(ctx, sub, inv)
    ctx.save(sub)
    inv = invoicing.finalize(ctx, inv, attempt_later=False)
    if inv["status"] == "open" and inv["collection_method"] == "charge_automatically":
        inv = collection.attempt_payment(ctx, inv, automatic=True)
    return inv


def apply_changes(
    ctx: Ctx,
    sub: Obj,
    changes: list[Change],
    *,
    proration_behavior: str,
    proration_date: int | None,
) -> list[Obj]:
    """Apply item changes (old -> new, quantities) with their prorations; returns the
    proration items created. The caller saves the subscription."""
    at = proration_date if proration_date is not None else ctx.now
    prorating = proration_behavior != "none" and sub["status"] in ("active", "past_due", "unpaid")
    created = proration_items(ctx, sub, changes, at) if prorating else []
    data = items_of(sub)
    for old, new, new_qty in changes:
        if old is not None and new is None:
            data[:] = [i for i in data if i["id"] != old["id"]]
            continue
        assert new is not None
        if new_qty is not None:
            new["quantity"] = new_qty
        if old is None:
            data.append(new)
        else:
            data[[i["id"] for i in data].index(old["id"])] = new
    sub["items"]["total_count"] = len(data)
    return created


def reset_anchor(
    ctx: Ctx, sub: Obj, changes: list[Change], proration_behavior: str, proration_date: int | None
) -> None:
    """An interval change or billing_cycle_anchor=now: credit what is left of the old
    period and start a new one now, invoiced at once."""
    at = proration_date if proration_date is not None else ctx.now
    if proration_behavior != "none" and sub["status"] in ("active", "past_due", "unpaid"):
        proration_items(ctx, sub, [(old, None, None) for old in items_of(sub)], at)
    apply_changes(ctx, sub, changes, proration_behavior="none", proration_date=None)
    now = ctx.now
    interval, count = lifecycle._recurring(sub)
    sub["billing_cycle_anchor"] = now
    lifecycle._advance_period(ctx, sub, now, shift(now, interval, count))
    cus = ctx.get(sub["customer"], "customer")
    inv = lifecycle._new_sub_invoice(ctx, sub, cus, "subscription_update", period_of(sub))
    lifecycle._item_lines(ctx, sub, inv, advance=period_of(sub), arrears=None)
    invoicing.attach_items(
        ctx, inv, invoicing.pending_items(ctx, sub["customer"], sub["id"], with_free=False)
    )
    inv["auto_advance"] = True
    inv["automatically_finalizes_at"] = None
    reschedule(ctx, sub)
    lifecycle._store_invoice(ctx, sub, inv)
    ctx.save(sub)
    inv = invoicing.finalize(ctx, inv, attempt_later=False)
    if inv["status"] == "open" and inv["collection_method"] == "charge_automatically":
        collection.attempt_payment(ctx, inv, automatic=True)


def apply_pending_update(ctx: Ctx, sub: Obj) -> None:
    pending = sub["pending_update"]
    before = {"pending_update": pending, "items": {"data": [dict(i) for i in items_of(sub)]}}
    sub["items"]["data"] = sub.pop("_pending_items")
    sub["items"]["total_count"] = len(sub["items"]["data"])
    sub["pending_update"] = None
    sub.pop("_pending_invoice", None)
    reschedule(ctx, sub)
    ctx.save(sub)
    emit(ctx, "customer.subscription.pending_update_applied", sub, before)
    emit(ctx, "customer.subscription.updated", sub, before)


def expire_pending_update(ctx: Ctx, sub: Obj) -> None:
    inv = ctx.find(sub.get("_pending_invoice"), invoicing.INVOICE)
    if inv is not None and inv["status"] == "open":
        invoicing.void(ctx, inv)
        sub = ctx.get(sub["id"], SUB)
    before = {"pending_update": sub["pending_update"]}
    sub["pending_update"] = None
    sub.pop("_pending_items", None)
    sub.pop("_pending_invoice", None)
    reschedule(ctx, sub)
    ctx.save(sub)
    emit(ctx, "customer.subscription.pending_update_expired", sub, before)


def stage_pending_update(
    ctx: Ctx, sub: Obj, changes: list[Change], proration_date: int | None, fields: dict[str, Any]
) -> Obj:
    """pending_if_incomplete: invoice the change now; apply it only once that is paid."""
    staged = {**sub, "items": {**sub["items"], "data": [dict(i) for i in items_of(sub)]}}
    created = apply_changes(
        ctx, staged, changes, proration_behavior="always_invoice", proration_date=proration_date
    )
    if not created:
        sub.update(fields)
        sub["items"] = staged["items"]
        ctx.save(sub)
        return sub
    sub["_staging"] = True
    ctx.save(sub)
    inv = invoice_pending_now(ctx, sub, "subscription_update")
    sub = ctx.get(sub["id"], SUB)
    del sub["_staging"]
    if inv is not None and inv["status"] == "paid":
        sub["items"] = staged["items"]
        sub.update(fields)
        ctx.save(sub)
        return sub
    sub["pending_update"] = {
        "billing_cycle_anchor": None,
        "expires_at": ctx.now + ctx.config.billing.incomplete_expires_s,
        "subscription_items": [sub_item_public(i) for i in staged["items"]["data"]],
        "trial_end": None,
        "trial_from_plan": None,
    }
    sub["_pending_items"] = staged["items"]["data"]
    sub["_pending_invoice"] = inv["id"] if inv else None
    reschedule(ctx, sub)
    ctx.save(sub)
    return sub


def sub_item_public(item: Obj) -> Obj:
    return dict(item)
