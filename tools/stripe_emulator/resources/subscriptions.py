"""Subscriptions and subscription items: the API over `billing.lifecycle`.

Create takes items (price, legacy plan or price_data), trials (trial_end, trial_period_days,
trial_from_plan, trial_settings), payment_behavior (allow_incomplete, default_incomplete,
error_if_incomplete), default_payment_method, default_tax_rates, discounts,
billing_cycle_anchor (or its config), collection_method (+ days_until_due), cancel_at,
cancel_at_period_end, automatic_tax, add_invoice_items and metadata. Update adds, removes
and changes items and quantities with proration_behavior (create_prorations,
always_invoice, none) at proration_date, and pending_if_incomplete. Cancel ends it now
(invoice_now, prorate) or at period end; pause and resume; list filters customer, price,
status, test_clock, collection_method, created. Objects bound to a customer's test clock
live on its time.
"""

from __future__ import annotations

from ..billing import collection as billing_collection
from ..billing import lifecycle
from ..billing.calendar import anchor_from_config, next_boundary, shift
from ..billing.lifecycle import SUB, items_of
from ..errors import invalid
from ..params import Params
from ..router import route
from ..state import Ctx, Emulator, after_event
from ..store import Obj
from .common import list_response
from .coupons import make_discounts, read_discounts
from .customers import DELETE_HOOKS
from .subscription_params import (
    ENDED,
    PAYMENT_BEHAVIORS,
    PRORATION,
    add_invoice_items,
    check_items,
    get_subscription,
    rate_objects,
    read_automatic_tax,
    read_billing_mode,
    read_default_pm,
    read_item,
    read_payment_settings,
    read_trial_settings,
    timestamp_or,
)
from .tax_rates import check_rates

__all__: list[str] = []

_TWO_YEARS = 730 * 86_400


@route("POST", "/v1/subscriptions", perm="subscriptions")
def create(ctx: Ctx, p: Params) -> Obj:
    customer_id = p.string("customer", required=True)
    assert customer_id is not None
    cus = ctx.get(customer_id, "customer", param="customer")
    ctx = ctx.on_clock(cus.get("test_clock"))
    now = ctx.now
    raw_items = p.array("items", required=True) or []
    read = []
    for i, raw in enumerate(raw_items):
        ip = Params(raw if isinstance(raw, dict) else None, f"items[{i}]")
        read.append(read_item(ctx, ip, f"items[{i}]"))
        ip.done()
    if not read:
        raise invalid("Missing required param: items.", param="items")
    currency = p.currency("currency") or read[0][0]["currency"]
    collection = (
        p.string("collection_method", choices={"charge_automatically", "send_invoice"})
        or "charge_automatically"
    )
    days_until_due = p.integer("days_until_due", min=0, max=730)
    if collection == "send_invoice" and days_until_due is None:
        raise invalid("Missing required param: days_until_due.", param="days_until_due")
    if collection != "send_invoice" and days_until_due is not None:
        raise invalid(
            "days_until_due can only be set when collection_method=send_invoice.",
            param="days_until_due",
        )
    behavior = p.string("payment_behavior", choices=PAYMENT_BEHAVIORS) or "allow_incomplete"
    if behavior == "pending_if_incomplete":
        raise invalid(
            "payment_behavior=pending_if_incomplete is only supported on updates.",
            param="payment_behavior",
        )
    proration = p.string("proration_behavior", choices=PRORATION) or "create_prorations"
    trial_end_raw = timestamp_or(p, "trial_end", {"now"})
    trial_days = p.integer("trial_period_days", min=0, max=730)
    trial_from_plan = bool(p.boolean("trial_from_plan"))
    if trial_from_plan and trial_end_raw is not None:
        raise invalid("trial_from_plan cannot be combined with trial_end.", param="trial_end")
    anchor_param = p.integer("billing_cycle_anchor", min=0)
    anchor_cfg = p.sub("billing_cycle_anchor_config")
    backdate = p.integer("backdate_start_date", min=0)
    cancel_at_raw = timestamp_or(p, "cancel_at", {"min_period_end", "max_period_end"})
    cancel_at_period_end = bool(p.boolean("cancel_at_period_end"))
    default_pm, default_source = read_default_pm(ctx, p, cus)
    default_rates = rate_objects(
        ctx, check_rates(ctx, p.strings("default_tax_rates"), "default_tax_rates")
    )
    wanted_discounts = read_discounts(p) or []
    auto_tax = read_automatic_tax(p.sub("automatic_tax"), cus)
    trial_settings = read_trial_settings(p.sub("trial_settings"))
    payment_settings = read_payment_settings(p.sub("payment_settings"))
    billing_mode = read_billing_mode(p.sub("billing_mode"))
    settings = p.sub("invoice_settings")
    invoice_settings: Obj = {"account_tax_ids": None, "issuer": {"type": "self"}}
    if settings is not None:
        invoice_settings["description"] = settings.string("description")
        invoice_settings["footer"] = settings.string("footer")
        settings.raw("issuer")
        settings.raw("account_tax_ids")
        settings.raw("custom_fields")
        settings.done()
    description = p.string("description", max_len=500)
    metadata = p.metadata() or {}
    p.boolean("off_session")
    on_behalf_of = p.string("on_behalf_of")
    p.raw("transfer_data")
    fee_pct = p.raw("application_fee_percent")
    p.raw("pending_invoice_item_interval")
    p.string("customer_account")
    for removed in ("billing_thresholds", "billing_schedules"):
        if p.has(removed):
            raise invalid(f"{removed} is not supported in this API version.", param=removed)
    sub_id = ctx.new_id("sub")
    add_items_params = p  # read below, once the subscription's id exists
    # -- periods and trial
    price0 = read[0][0]
    interval = (price0["recurring"]["interval"], int(price0["recurring"]["interval_count"]))
    start = now
    if backdate is not None:
        if backdate > now:
            raise invalid("backdate_start_date must be in the past.", param="backdate_start_date")
        start = backdate
    trial_end: int | None = None
    if trial_end_raw == "now":
        trial_end = None
    elif isinstance(trial_end_raw, int):
        if trial_end_raw <= now:
            raise invalid(
                "Invalid timestamp: must be an integer Unix timestamp in the future.",
                param="trial_end",
            )
        trial_end = trial_end_raw
    elif trial_days:
        trial_end = now + trial_days * 86_400
    elif trial_from_plan:
        days = price0["recurring"].get("trial_period_days")
        trial_end = now + int(days) * 86_400 if days else None
    if anchor_param is not None and anchor_cfg is not None:
        raise invalid(
            "You may only specify one of billing_cycle_anchor and billing_cycle_anchor_config.",
            param="billing_cycle_anchor",
        )
    anchor_config = None
    if anchor_cfg is not None:
        cfg = {
            k: anchor_cfg.integer(k, min=0)
            for k in ("day_of_month", "hour", "minute", "month", "second")
        }
        anchor_cfg.done()
        if cfg["day_of_month"] is None:
            raise invalid(
                "Missing required param: billing_cycle_anchor_config[day_of_month].",
                param="billing_cycle_anchor_config[day_of_month]",
            )
        anchor_param = anchor_from_config(
            trial_end or start,
            interval[0],
            cfg["day_of_month"],
            cfg["month"],
            cfg["hour"],
            cfg["minute"],
            cfg["second"],
        )
        anchor_config = cfg
    if anchor_param is not None:
        if anchor_param < start:
            raise invalid(
                "billing_cycle_anchor cannot be in the past.", param="billing_cycle_anchor"
            )
        if anchor_param > shift(trial_end or start, interval[0], interval[1]):
            raise invalid(
                "billing_cycle_anchor cannot be later than the next natural billing date for "
                "the plan.",
                param="billing_cycle_anchor",
            )
    if trial_end is not None and trial_end > (anchor_param or start) + _TWO_YEARS:
        raise invalid(
            "trial_end can be at most two years after the billing cycle anchor.", param="trial_end"
        )
    anchor = anchor_param if anchor_param is not None else (trial_end or start)
    if trial_end is not None:
        period = (start, trial_end)
    else:
        period = (start, next_boundary(anchor, interval[0], interval[1], start))
    status = "trialing" if trial_end is not None else "incomplete"
    items = [
        lifecycle.new_item(
            ctx,
            sub_id,
            price,
            qty,
            metadata=extra.get("metadata"),
            tax_rates=rate_objects(ctx, extra.get("tax_rates") or []),
            period=period,
        )
        for price, qty, _given, extra in read
    ]
    check_items(items, currency, None)
    if price0["currency"] != currency:
        raise invalid(
            f"The price's currency ({price0['currency']}) does not match the "
            f"subscription's ({currency}).",
            param="currency",
        )
    if cus["currency"] is not None and cus["currency"] != currency:
        raise invalid(
            f"You cannot combine currencies on a single customer. This customer has an active "
            f"subscription, subscription schedule, discount, quote, or invoice item with "
            f"currency {cus['currency']}.",
            param="currency",
        )
    if cancel_at_raw in ("min_period_end", "max_period_end"):
        cancel_at: int | None = period[1]
    else:
        cancel_at = cancel_at_raw if isinstance(cancel_at_raw, int) else None
    payer = default_pm or default_source or billing_collection.payer_for(ctx, customer_id, None)
    if (
        behavior == "error_if_incomplete"
        and trial_end is None
        and collection == ("charge_automatically")
        and any(lifecycle.item_amount(ctx, i) > 0 for i in items if not lifecycle.is_metered(i))
    ):
        lifecycle.charge_precheck(ctx, payer)
    discounts = make_discounts(ctx, wanted_discounts, customer=customer_id, subscription=sub_id)
    sub: Obj = {
        "id": sub_id,
        "object": SUB,
        "application": None,
        "application_fee_percent": float(fee_pct) if fee_pct not in (None, "") else None,
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": auto_tax,
            "liability": {"type": "self"} if auto_tax else None,
        },
        "billing_cycle_anchor": anchor,
        "billing_cycle_anchor_config": anchor_config,
        "billing_mode": billing_mode,
        "billing_schedules": [],
        "billing_thresholds": None,
        "cancel_at": cancel_at,
        "cancel_at_period_end": cancel_at_period_end,
        "canceled_at": now if (cancel_at_period_end or cancel_at) else None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": collection,
        "created": now,
        "currency": currency,
        "customer": customer_id,
        "customer_account": None,
        "days_until_due": days_until_due,
        "default_payment_method": default_pm,
        "default_source": default_source,
        "default_tax_rates": default_rates,
        "description": description,
        "discounts": discounts,
        "ended_at": None,
        "invoice_settings": invoice_settings,
        "items": {
            "object": "list",
            "data": items,
            "has_more": False,
            "total_count": len(items),
            "url": f"/v1/subscription_items?subscription={sub_id}",
        },
        "latest_invoice": None,
        "livemode": False,
        "managed_payments": {"enabled": False},
        "metadata": metadata,
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": on_behalf_of,
        "pause_collection": None,
        "payment_settings": payment_settings,
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": start,
        "status": status,
        "test_clock": cus.get("test_clock"),
        "transfer_data": None,
        "trial_end": trial_end,
        "trial_settings": trial_settings,
        "trial_start": start if trial_end is not None else None,
    }
    add_items = add_invoice_items(ctx, add_items_params, cus, sub_id, currency)
    p.done()
    if cus["currency"] is None:
        cus["currency"] = currency
        ctx.save(cus)
    ctx.insert(sub, ("customer", "test_clock", "pending_setup_intent"))
    lifecycle.emit(ctx, "customer.subscription.created", sub)
    for discount_id in discounts:
        discount = ctx.get(discount_id, "discount")
        ctx.emit("customer.discount.created", {k: v for k, v in discount.items() if k[0] != "_"})
    if status == "trialing" and trial_end is not None:
        if trial_end - ctx.config.billing.trial_will_end_s <= now:
            sub["_twe"] = trial_end
            lifecycle.emit(ctx, "customer.subscription.trial_will_end", sub)
    inv = lifecycle.first_invoice(ctx, sub, cus, proration, add_items)
    ctx.save(sub)
    sub = lifecycle.activate_first(ctx, sub, inv, behavior)
    if behavior == "default_incomplete" or payment_settings["save_default_payment_method"] == (
        "on_subscription"
    ):
        sub = _maybe_setup_intent(ctx, sub)
    return lifecycle.sub_view(sub)


def _maybe_setup_intent(ctx: Ctx, sub: Obj) -> Obj:
    """A subscription with nothing to pay now collects a payment method through a
    SetupIntent (`pending_setup_intent`)."""
    inv = ctx.find(sub["latest_invoice"], "invoice")
    if inv is None or inv["amount_due"] > 0 or sub["status"] not in ("trialing", "active"):
        return sub
    from .setup_intents import new_setup_intent

    si = new_setup_intent(ctx, customer=sub["customer"])
    ctx.insert(si, ("customer",))
    ctx.emit("setup_intent.created", si)
    sub["pending_setup_intent"] = si["id"]
    ctx.store.add_index(ctx.account, SUB, "pending_setup_intent", si["id"], sub["id"])
    ctx.save(sub)
    return sub


@after_event
def _on_setup_intent(em: Emulator, event: Obj) -> None:
    if event["type"] != "setup_intent.succeeded":
        return
    si = event["data"]["object"]
    account = event.get("account") or em.config.platform_account
    sub = em.store.first(account, SUB, "pending_setup_intent", si["id"])
    if sub is None:
        return
    ctx = em.ctx(account).on_clock(sub.get("test_clock"))
    before = {
        "pending_setup_intent": si["id"],
        "default_payment_method": sub["default_payment_method"],
    }
    sub["pending_setup_intent"] = None
    if sub["default_payment_method"] is None:
        sub["default_payment_method"] = si["payment_method"]
    ctx.save(sub)
    lifecycle.emit(ctx, "customer.subscription.updated", sub, before)


@route("GET", "/v1/subscriptions/{id}", perm="subscriptions")
def retrieve(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    return lifecycle.sub_view(ctx.get(id, SUB))


@route("DELETE", "/v1/subscriptions/{id}", perm="subscriptions")
def cancel(ctx: Ctx, p: Params, id: str) -> Obj:
    ctx, sub = get_subscription(ctx, id)
    invoice_now = bool(p.boolean("invoice_now"))
    prorate = bool(p.boolean("prorate"))
    details = p.sub("cancellation_details")
    given: Obj = {}
    if details is not None:
        given = {k: details.string(k) for k in ("comment", "feedback") if details.has(k)}
        details.string("feedback_option")
        details.done()
    p.done()
    if sub["status"] in ENDED:
        raise invalid(f"This subscription is already {sub['status']}.")
    sub = lifecycle.cancel_now(
        ctx,
        sub,
        reason="cancellation_requested",
        prorate_credit=prorate,
        invoice_now=invoice_now,
        details=given,
    )
    return lifecycle.sub_view(sub)


@route("POST", "/v1/subscriptions/{id}/pause", perm="subscriptions")
def pause(ctx: Ctx, p: Params, id: str) -> Obj:
    ctx, sub = get_subscription(ctx, id)
    p.string("type", choices={"subscription"})
    invoicing_behavior = (
        p.string("invoicing_behavior", choices={"invoice", "pending_invoice_item"})
        or "pending_invoice_item"
    )
    bill_for = p.sub("bill_for")
    credit = True
    if bill_for is not None:
        unused = bill_for.sub("unused_time_from")
        if unused is not None:
            kind = unused.string(
                "type", required=True, choices={"item_current_period_start", "none", "now"}
            )
            unused.done()
            credit = kind != "none"
        usage = bill_for.sub("outstanding_usage_through")
        if usage is not None:
            usage.string("type", required=True, choices={"none", "now"})
            usage.done()
        bill_for.done()
    p.done()
    if sub["status"] not in ("active", "trialing", "past_due"):
        raise invalid(f"You cannot pause a subscription with status {sub['status']}.")
    return lifecycle.sub_view(lifecycle.pause(ctx, sub, invoicing_behavior, credit))


@route("POST", "/v1/subscriptions/{id}/resume", perm="subscriptions")
def resume(ctx: Ctx, p: Params, id: str) -> Obj:
    ctx, sub = get_subscription(ctx, id)
    anchor = p.string("billing_cycle_anchor", choices={"now", "unchanged"}) or "now"
    proration = p.string("proration_behavior", choices=PRORATION) or "create_prorations"
    proration_date = p.integer("proration_date", min=0)
    p.string("payment_behavior", choices={"resume_on_payment_attempt", "resume_on_payment_success"})
    p.done()
    if sub["status"] != "paused":
        raise invalid("Only a paused subscription can be resumed.")
    return lifecycle.sub_view(
        lifecycle.resume(ctx, sub, anchor == "now", proration, proration_date)
    )


@route("DELETE", "/v1/subscriptions/{id}/discount", perm="subscriptions")
def delete_discount(ctx: Ctx, p: Params, id: str) -> Obj:
    ctx, sub = get_subscription(ctx, id)
    p.done()
    if not sub["discounts"]:
        raise invalid("This subscription has no discount to delete.")
    gone = ctx.get(sub["discounts"][0], "discount")
    before = {"discounts": sub["discounts"]}
    sub["discounts"] = sub["discounts"][1:]
    ctx.save(sub)
    view = {k: v for k, v in gone.items() if k[0] != "_"}
    ctx.emit("customer.discount.deleted", view)
    lifecycle.emit(ctx, "customer.subscription.updated", sub, before)
    view["deleted"] = True
    return view


@route("GET", "/v1/subscriptions", perm="subscriptions")
def list_(ctx: Ctx, p: Params) -> Obj:
    customer = p.string("customer")
    price = p.string("price")
    status = p.string(
        "status",
        choices={
            "active",
            "all",
            "canceled",
            "ended",
            "incomplete",
            "incomplete_expired",
            "past_due",
            "paused",
            "trialing",
            "unpaid",
        },
    )
    clock = p.string("test_clock")
    method = p.string("collection_method", choices={"charge_automatically", "send_invoice"})
    auto = p.sub("automatic_tax")
    auto_enabled = None
    if auto is not None:
        auto_enabled = auto.boolean("enabled", required=True)
        auto.done()
    for window in ("current_period_end", "current_period_start"):
        p.raw(window)

    def status_ok(s: str) -> bool:
        if status is None:
            return s != "canceled"
        if status == "all":
            return True
        if status == "ended":
            return s in ENDED
        return s == status

    def pred(o: Obj) -> bool:
        return (
            status_ok(o["status"])
            and (customer is None or o["customer"] == customer)
            and (clock is None or o["test_clock"] == clock)
            and (method is None or o["collection_method"] == method)
            and (price is None or any(i["price"]["id"] == price for i in items_of(o)))
            and (auto_enabled is None or o["automatic_tax"]["enabled"] == auto_enabled)
        )

    where = ("customer", customer) if customer else (("test_clock", clock) if clock else None)
    page = list_response(ctx, p, SUB, "/v1/subscriptions", where=where, predicate=pred)
    page["data"] = [lifecycle.sub_view(o) for o in page["data"]]
    return page


def _cancel_on_delete(ctx: Ctx, cus: Obj) -> None:
    found, _ = ctx.store.page(
        ctx.account,
        SUB,
        limit=100,
        where=("customer", cus["id"]),
        predicate=lambda o: o["status"] not in ENDED,
    )
    for sub in found:
        lifecycle.cancel_now(
            ctx.on_clock(sub.get("test_clock")), sub, reason="cancellation_requested"
        )


DELETE_HOOKS.append(_cancel_on_delete)


# -- subscription items -------------------------------------------------------------------------
