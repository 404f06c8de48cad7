"""`POST /v1/subscriptions/{id}`: changes to a subscription and how they are billed
(`billing.changes`): items and quantities with proration_behavior and proration_date,
payment_behavior (allow_incomplete, default_incomplete, error_if_incomplete,
pending_if_incomplete), trial_end, billing_cycle_anchor, cancellation, pause_collection,
discounts, tax rates, payment method and collection settings."""

from __future__ import annotations

from typing import Any

from ..billing import changes as sub_changes
from ..billing import collection as billing_collection
from ..billing import lifecycle
from ..billing.changes import Change
from ..billing.lifecycle import SUB, items_of, period_of
from ..errors import invalid, missing
from ..params import Params, merge_metadata
from ..router import route
from ..state import Ctx
from ..store import Obj
from .coupons import make_discounts, read_discounts
from .subscription_params import (
    ENDED,
    PAYMENT_BEHAVIORS,
    PRORATION,
    add_invoice_items,
    check_items,
    get_subscription,
    rate_objects,
    read_automatic_tax,
    read_default_pm,
    read_item,
    read_payment_settings,
    read_trial_settings,
    timestamp_or,
)
from .tax_rates import check_rates

__all__ = ["change_items", "item_changes"]


def item_changes(ctx: Ctx, sub: Obj, raw_items: list[Any]) -> list[Change]:
    """items[] of an update as (old, new, quantity) changes; metadata and tax rates of an
    unchanged item are set in place."""
    current = {i["id"]: i for i in items_of(sub)}
    changes: list[Change] = []
    for i, raw in enumerate(raw_items):
        prefix = f"items[{i}]"
        ip = Params(raw if isinstance(raw, dict) else None, prefix)
        item_id = ip.string("id")
        old = current.get(item_id or "") if item_id else None
        if item_id and old is None:
            raise missing("subscription_item", item_id, f"{prefix}[id]")
        if ip.boolean("deleted"):
            ip.boolean("clear_usage")
            ip.done()
            if old is None:
                raise invalid("Missing required param: items[][id].", param=f"{prefix}[id]")
            changes.append((old, None, None))
            continue
        ip.boolean("clear_usage")
        has_price = any(ip.has(k) for k in ("price", "plan", "price_data"))
        if old is None or has_price:
            price, qty, qty_given, extra = read_item(ctx, ip, prefix)
        else:
            price, extra = old["price"], {}
            qty_given = ip.has("quantity")
            qty = ip.integer("quantity", min=0)
            if ip.has("metadata"):
                extra["metadata"] = ip.metadata() or {}
            if ip.has("tax_rates"):
                extra["tax_rates"] = check_rates(
                    ctx, ip.strings("tax_rates"), f"{prefix}[tax_rates]"
                )
            if qty_given and lifecycle.is_metered(old):
                raise invalid(
                    "Quantity should not be specified where usage_type is `metered`.",
                    param=f"{prefix}[quantity]",
                )
        ip.done()
        start, end = period_of(sub)
        if old is None:
            new = lifecycle.new_item(
                ctx,
                sub["id"],
                price,
                qty,
                metadata=extra.get("metadata"),
                tax_rates=rate_objects(ctx, extra.get("tax_rates") or []),
                period=(start, end),
                taken={i["id"] for i in items_of(sub)},
            )
            changes.append((None, new, None))
            continue
        new = dict(old)
        if "metadata" in extra:
            new["metadata"] = merge_metadata(old["metadata"], extra["metadata"])
        if "tax_rates" in extra:
            new["tax_rates"] = rate_objects(ctx, extra["tax_rates"])
        price_changed = price["id"] != old["price"]["id"]
        if price_changed:
            from .common import public
            from .prices import plan_view

            new["price"] = public(price)
            new["plan"] = plan_view(new["price"])
            if lifecycle.is_metered(new):
                new["quantity"] = None
            elif old["quantity"] is None:
                new["quantity"] = 1
        new_qty = qty if qty_given and not lifecycle.is_metered(new) else None
        if price_changed or (new_qty is not None and new_qty != old["quantity"]):
            changes.append((old, new, new_qty))
        else:  # metadata or tax rates only: no proration
            sub["items"]["data"][[x["id"] for x in items_of(sub)].index(old["id"])] = new
    return changes


def _interval_changes(sub: Obj, changes: list[Change]) -> bool:
    current = lifecycle._recurring(sub)
    for _old, new, _qty in changes:
        if new is not None:
            rec = new["price"]["recurring"]
            if (rec["interval"], int(rec["interval_count"])) != current:
                return True
    return False


def change_items(
    ctx: Ctx,
    sub: Obj,
    changes: list[Change],
    *,
    proration_behavior: str,
    proration_date: int | None,
    payment_behavior: str,
    anchor_now: bool = False,
    before: dict[str, Any] | None = None,
    fields: dict[str, Any] | None = None,
) -> Obj:
    """Apply item changes to a subscription and bill them as Stripe would."""
    before = dict(before or {})
    start, end = period_of(sub)
    if proration_date is not None and not start <= proration_date <= end:
        raise invalid(
            "proration_date must be within the subscription's current period.",
            param="proration_date",
        )
    remaining = [i for i in items_of(sub)]
    for old, new, _q in changes:
        remaining = [i for i in remaining if old is None or i["id"] != old["id"]]
        if new is not None:
            remaining.append(new)
    if changes:
        check_items(
            remaining,
            sub["currency"],
            None if anchor_now or _interval_changes(sub, changes) else lifecycle._recurring(sub),
        )
    reset = anchor_now or (changes and _interval_changes(sub, changes))
    live = sub["status"] in ("active", "past_due", "unpaid")
    invoices_now = live and (reset or proration_behavior == "always_invoice")
    if (
        payment_behavior == "error_if_incomplete"
        and invoices_now
        and (sub["collection_method"] == "charge_automatically")
    ):
        lifecycle.charge_precheck(ctx, billing_collection.payer_for(ctx, sub["customer"], sub))
    if payment_behavior == "pending_if_incomplete" and changes and live and not reset:
        sub = sub_changes.stage_pending_update(ctx, sub, changes, proration_date, fields or {})
        lifecycle.reschedule(ctx, sub)
        ctx.save(sub)
        lifecycle.emit(ctx, "customer.subscription.updated", sub, before or {"items": None})
        return sub
    sub.update(fields or {})
    if reset:
        before.setdefault("items", {"data": [dict(i) for i in items_of(sub)]})
        before.setdefault("billing_cycle_anchor", sub["billing_cycle_anchor"])
        lifecycle.emit(ctx, "customer.subscription.updated", _preview(sub, changes), before)
        sub_changes.reset_anchor(ctx, sub, changes, proration_behavior, proration_date)
        return ctx.get(sub["id"], SUB)
    if changes:
        before.setdefault("items", {"data": [dict(i) for i in items_of(sub)]})
        sub_changes.apply_changes(ctx, sub, changes, proration_behavior="none", proration_date=None)
    lifecycle.reschedule(ctx, sub)
    ctx.save(sub)
    if before:
        lifecycle.emit(ctx, "customer.subscription.updated", sub, before)
    if changes and live and proration_behavior != "none":
        at = proration_date if proration_date is not None else ctx.now
        sub_changes.proration_items(ctx, sub, changes, at)
        if proration_behavior == "always_invoice":
            sub_changes.invoice_pending_now(ctx, sub, "subscription_update")
    return ctx.get(sub["id"], SUB)


def _preview(sub: Obj, changes: list[Change]) -> Obj:
    shown = {**sub, "items": {**sub["items"], "data": [dict(i) for i in items_of(sub)]}}
    data = shown["items"]["data"]
    for old, new, qty in changes:
        if old is not None:
            data[:] = [i for i in data if i["id"] != old["id"]]
        if new is not None:
            data.append({**new, "quantity": qty if qty is not None else new["quantity"]})
    return shown


@route("POST", "/v1/subscriptions/{id}", perm="subscriptions")
def update(ctx: Ctx, p: Params, id: str) -> Obj:
    ctx, sub = get_subscription(ctx, id)
    status = sub["status"]
    keys = set(p.keys()) - {"expand"}
    if status in ENDED and keys - {"metadata", "cancellation_details"}:
        raise invalid(
            f"A {status} subscription can only update its cancellation_details and metadata."
        )
    if status == "incomplete" and keys - {"metadata", "default_source"}:
        raise invalid(
            "You cannot update a subscription in `incomplete` status in a way that results in "
            "new invoices or invoice items. Only metadata and default_source can be updated."
        )
    cus = ctx.get(sub["customer"], "customer")
    before: dict[str, Any] = {}
    fields: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        if value != sub[key]:
            before[key] = sub[key]
            fields[key] = value

    proration = p.string("proration_behavior", choices=PRORATION) or "create_prorations"
    proration_date = p.integer("proration_date", min=0)
    behavior = p.string("payment_behavior", choices=PAYMENT_BEHAVIORS) or "allow_incomplete"
    raw_items = p.array("items")
    changes = item_changes(ctx, sub, raw_items) if raw_items else []
    anchor = p.string("billing_cycle_anchor", choices={"now", "unchanged"})
    if p.has("metadata"):
        put("metadata", merge_metadata(sub["metadata"], p.metadata()))
    if p.has("description"):
        put("description", p.string("description", max_len=500))
    if p.has("default_payment_method") or p.has("default_source"):
        pm, src = read_default_pm(ctx, p, cus)
        if p.has("default_payment_method"):
            put("default_payment_method", pm)
        if p.has("default_source"):
            put("default_source", src)
    if p.has("default_tax_rates"):
        ids = check_rates(ctx, p.strings("default_tax_rates"), "default_tax_rates")
        put("default_tax_rates", rate_objects(ctx, ids))
    if p.has("collection_method"):
        put(
            "collection_method",
            p.string("collection_method", choices={"charge_automatically", "send_invoice"}),
        )
    if p.has("days_until_due"):
        put("days_until_due", p.integer("days_until_due", min=0, max=730))
    method = fields.get("collection_method", sub["collection_method"])
    if method == "send_invoice" and fields.get("days_until_due", sub["days_until_due"]) is None:
        raise invalid("Missing required param: days_until_due.", param="days_until_due")
    if method == "charge_automatically" and "collection_method" in fields:
        fields["days_until_due"] = None
    if p.has("cancel_at_period_end"):
        flag = bool(p.boolean("cancel_at_period_end"))
        put("cancel_at_period_end", flag)
        if flag:
            put("canceled_at", ctx.now)
            if sub["cancel_at"] is not None:
                put("cancel_at", None)
        elif sub["cancel_at"] is None:
            put("canceled_at", None)
    if p.has("cancel_at"):
        raw = timestamp_or(p, "cancel_at", {"min_period_end", "max_period_end"})
        value = period_of(sub)[1] if isinstance(raw, str) else raw
        if value is not None and value <= ctx.now:
            raise invalid("cancel_at must be in the future.", param="cancel_at")
        put("cancel_at", value)
        put("canceled_at", ctx.now if value is not None else None)
        if value is not None:
            put("cancel_at_period_end", False)
    details = p.sub("cancellation_details")
    if details is not None:
        current = dict(sub["cancellation_details"])
        for key in ("comment", "feedback"):
            if details.has(key):
                current[key] = details.string(key)
        details.string("feedback_option")
        details.done()
        put("cancellation_details", current)
    if p.has("pause_collection"):
        pc = p.sub("pause_collection")
        paused: Obj | None = None
        if pc is not None and pc.keys():
            paused = {
                "behavior": pc.string(
                    "behavior",
                    required=True,
                    choices={"keep_as_draft", "mark_uncollectible", "void"},
                ),
                "resumes_at": pc.integer("resumes_at", min=0),
            }
            pc.done()
        put("pause_collection", paused)
    if p.has("discounts"):
        wanted = read_discounts(p) or []
        new_ids = make_discounts(
            ctx, wanted, customer=sub["customer"], subscription=id, existing=sub["discounts"]
        )
        for gone in set(sub["discounts"]) - set(new_ids):
            discount = ctx.find(gone, "discount")
            if discount is not None:
                ctx.emit(
                    "customer.discount.deleted", {k: v for k, v in discount.items() if k[0] != "_"}
                )
        for added in set(new_ids) - set(sub["discounts"]):
            discount = ctx.get(added, "discount")
            ctx.emit(
                "customer.discount.created", {k: v for k, v in discount.items() if k[0] != "_"}
            )
        put("discounts", new_ids)
    if p.has("automatic_tax"):
        put(
            "automatic_tax",
            {
                "disabled_reason": None,
                "enabled": read_automatic_tax(p.sub("automatic_tax"), cus),
                "liability": {"type": "self"},
            },
        )
    if p.has("trial_settings"):
        put("trial_settings", read_trial_settings(p.sub("trial_settings")))
    if p.has("payment_settings"):
        put("payment_settings", read_payment_settings(p.sub("payment_settings")))
    trial_end = timestamp_or(p, "trial_end", {"now"})
    p.boolean("trial_from_plan")
    p.boolean("off_session")
    for passthrough in (
        "invoice_settings",
        "on_behalf_of",
        "transfer_data",
        "application_fee_percent",
        "pending_invoice_item_interval",
    ):
        p.raw(passthrough)
    for removed in ("billing_thresholds", "billing_schedules"):
        if p.has(removed):
            raise invalid(f"{removed} is not supported in this API version.", param=removed)
    if p.has("add_invoice_items"):
        add_invoice_items(ctx, p, cus, id, sub["currency"])
    p.done()
    if trial_end is not None:
        if status != "trialing":
            raise invalid(
                "The emulator changes trial_end only while a subscription is trialing.",
                param="trial_end",
            )
        sub.update(fields)
        return lifecycle.sub_view(_change_trial(ctx, sub, trial_end, before))
    sub = change_items(
        ctx,
        sub,
        changes,
        proration_behavior=proration,
        proration_date=proration_date,
        payment_behavior=behavior,
        anchor_now=anchor == "now",
        before=before,
        fields=fields,
    )
    return lifecycle.sub_view(sub)


def _change_trial(ctx: Ctx, sub: Obj, trial_end: int | str, before: dict[str, Any]) -> Obj:
    now = ctx.now
    before["trial_end"] = sub["trial_end"]
    if trial_end == "now":
        sub["trial_end"] = now
        for item in items_of(sub):
            item["current_period_end"] = now
        sub["billing_cycle_anchor"] = now
        sub["_twe"] = now
        ctx.save(sub)
        lifecycle.emit(ctx, "customer.subscription.trial_will_end", sub)
        lifecycle._end_trial(ctx, sub)
        return ctx.get(sub["id"], SUB)
    assert isinstance(trial_end, int)
    if trial_end <= now:
        raise invalid("trial_end must be in the future.", param="trial_end")
    sub["trial_end"] = trial_end
    sub["billing_cycle_anchor"] = trial_end
    for item in items_of(sub):
        item["current_period_end"] = trial_end
    if trial_end - ctx.config.billing.trial_will_end_s <= now and sub.get("_twe") != trial_end:
        sub["_twe"] = trial_end
        lifecycle.emit(ctx, "customer.subscription.trial_will_end", sub)
    lifecycle.reschedule(ctx, sub)
    ctx.save(sub)
    lifecycle.emit(ctx, "customer.subscription.updated", sub, before)
    return sub
