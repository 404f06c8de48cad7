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

from typing import Any

from ..billing import invoicing, lifecycle
from ..billing.calendar import anchor_from_config, next_boundary, shift
from ..billing.lifecycle import SUB, Change, items_of, period_of
from ..errors import invalid, missing
from ..params import Params, merge_metadata
from ..router import route
from ..state import Ctx, Emulator, after_event
from ..store import Obj
from .common import list_response
from .coupons import make_discounts, read_discounts
from .customers import DELETE_HOOKS, check_default_payment_method
from .prices import price_from_item
from .tax_rates import check_rates

__all__ = ["get_subscription"]

_PAYMENT_BEHAVIORS = frozenset(
    {"allow_incomplete", "default_incomplete", "error_if_incomplete", "pending_if_incomplete"}
)
_PRORATION = frozenset({"always_invoice", "create_prorations", "none"})
_MAX_ITEMS = 20
_TWO_YEARS = 730 * 86_400
_ENDED = ("canceled", "incomplete_expired")


def get_subscription(ctx: Ctx, sub_id: str, param: str = "id") -> tuple[Ctx, Obj]:
    """The subscription and a context on its own timeline."""
    sub = ctx.get(sub_id, SUB, param=param)
    return ctx.on_clock(sub.get("test_clock")), sub


def _rate_objects(ctx: Ctx, ids: list[str]) -> list[Obj]:
    from .common import public

    return [public(ctx.get(rate_id, "tax_rate")) for rate_id in ids]


def _timestamp_or(p: Params, key: str, words: set[str]) -> int | str | None:
    raw = p.raw(key)
    if raw is None or raw == "":
        return None
    if isinstance(raw, str) and raw in words:
        return raw
    return p.integer(key, min=0)


def _read_item(ctx: Ctx, ip: Params, prefix: str) -> tuple[Obj, int | None, bool, Obj]:
    """(price, quantity, quantity given, extra fields) of one item parameter."""
    price = price_from_item(ctx, ip, prefix, recurring=True)
    qty_given = ip.has("quantity")
    qty = ip.integer("quantity", min=0)
    extra: Obj = {}
    if ip.has("metadata"):
        extra["metadata"] = ip.metadata() or {}
    if ip.has("tax_rates"):
        extra["tax_rates"] = check_rates(ctx, ip.strings("tax_rates"), f"{prefix}[tax_rates]")
    for unsupported in ("discounts", "billing_thresholds", "current_trial"):
        if ip.has(unsupported) and ip.raw(unsupported) not in ("", None):
            raise invalid(
                f"{prefix}[{unsupported}] is not supported by the emulator (use discounts on "
                "the subscription)."
                if unsupported == "discounts"
                else f"{prefix}[{unsupported}] is not supported in this API version.",
                param=f"{prefix}[{unsupported}]",
            )
    if qty_given and price["recurring"]["usage_type"] == "metered":
        raise invalid(
            "Quantity should not be specified where usage_type is `metered`. Remove quantity "
            f"from `{prefix}`.",
            param=f"{prefix}[quantity]",
        )
    return price, qty, qty_given, extra


def _check_items(items: list[Obj], currency: str, interval: tuple[str, int] | None) -> None:
    if not items:
        raise invalid("A subscription must have at least one active plan.", param="items")
    if len(items) > _MAX_ITEMS:
        raise invalid(f"A subscription can have at most {_MAX_ITEMS} items.", param="items")
    seen: set[str] = set()
    for item in items:
        price = item["price"]
        if price["id"] in seen:
            raise invalid(
                "Cannot add multiple subscription items with the same plan: " + price["id"],
                param="items",
            )
        seen.add(price["id"])
        rec = price["recurring"]
        if price["currency"] != currency or (
            interval is not None and (rec["interval"], rec["interval_count"]) != interval
        ):
            raise invalid(
                "Currency and interval fields must match across all plans on this "
                "subscription. Found mismatch in " + price["id"] + ".",
                param="items",
            )
        interval = interval or (rec["interval"], rec["interval_count"])


def _add_invoice_items(ctx: Ctx, p: Params, cus: Obj, sub_id: str, currency: str) -> list[Obj]:
    """add_invoice_items[]: one-time prices (or price_data) added to the next invoice."""
    raw = p.array("add_invoice_items")
    if not raw:
        return []
    from .invoice_items import new_invoice_item

    out = []
    for i, item in enumerate(raw):
        ip = Params(item if isinstance(item, dict) else None, f"add_invoice_items[{i}]")
        ii = new_invoice_item(
            ctx, ip, cus, currency=currency, subscription=sub_id, prefix=f"add_invoice_items[{i}]"
        )
        ip.done()
        out.append(ii)
    return out


def _trial_settings(p: Params | None, current: Obj | None = None) -> Obj:
    out = current or {"end_behavior": {"missing_payment_method": "create_invoice"}}
    if p is None:
        return out
    end = p.sub("end_behavior", required=True)
    assert end is not None
    missing_pm = end.string(
        "missing_payment_method", required=True, choices={"cancel", "create_invoice", "pause"}
    )
    end.string("billing_cycle_anchor", choices={"now", "unchanged"})
    end.done()
    p.done()
    return {"end_behavior": {"missing_payment_method": missing_pm}}


def _payment_settings(p: Params | None) -> Obj:
    out: Obj = {
        "payment_method_options": None,
        "payment_method_types": None,
        "save_default_payment_method": "off",
    }
    if p is None:
        return out
    types = p.strings("payment_method_types")
    if types and any(t != "card" for t in types):
        raise invalid(
            "The emulator supports the card payment method type only.",
            param="payment_settings[payment_method_types]",
        )
    out["payment_method_types"] = types or None
    out["save_default_payment_method"] = (
        p.string("save_default_payment_method", choices={"off", "on_subscription"}) or "off"
    )
    out["payment_method_options"] = p.raw("payment_method_options") or None
    p.done()
    return out


def _default_pm(ctx: Ctx, p: Params, cus: Obj) -> tuple[str | None, str | None]:
    pm = p.string("default_payment_method")
    if pm:
        check_default_payment_method(ctx, cus, pm, "default_payment_method")
    src = p.string("default_source")
    if src:
        found = ctx.find(src, "payment_method")
        if found is None or found.get("customer") != cus["id"]:
            raise invalid(
                f"No such source: '{src}'", param="default_source", code="resource_missing"
            )
    return pm, src


def _automatic_tax(p: Params | None, cus: Obj) -> bool:
    if p is None:
        return False
    enabled = bool(p.boolean("enabled", required=True))
    p.raw("liability")
    p.done()
    if enabled and not ((cus.get("address") or {}).get("country")):
        raise invalid(
            "The customer's location isn't recognized. Set a valid address (at least a "
            "country) on the customer to use automatic tax.",
            param="automatic_tax[enabled]",
            code="customer_tax_location_invalid",
        )
    return enabled


def _billing_mode(p: Params | None) -> Obj:
    mode: Obj = {
        "flexible": {"proration_discounts": "included"},
        "type": "flexible",
        "updated_at": None,
    }
    if p is None:
        return mode
    kind = p.string("type", required=True, choices={"classic", "flexible"})
    flexible = p.sub("flexible")
    if flexible is not None:
        mode["flexible"]["proration_discounts"] = (
            flexible.string("proration_discounts", choices={"included", "itemized"}) or "included"
        )
        flexible.done()
    p.done()
    if kind == "classic":
        mode = {"flexible": None, "type": "classic", "updated_at": None}
    return mode


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
        read.append(_read_item(ctx, ip, f"items[{i}]"))
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
    behavior = p.string("payment_behavior", choices=_PAYMENT_BEHAVIORS) or "allow_incomplete"
    if behavior == "pending_if_incomplete":
        raise invalid(
            "payment_behavior=pending_if_incomplete is only supported on updates.",
            param="payment_behavior",
        )
    proration = p.string("proration_behavior", choices=_PRORATION) or "create_prorations"
    trial_end_raw = _timestamp_or(p, "trial_end", {"now"})
    trial_days = p.integer("trial_period_days", min=0, max=730)
    trial_from_plan = bool(p.boolean("trial_from_plan"))
    if trial_from_plan and trial_end_raw is not None:
        raise invalid("trial_from_plan cannot be combined with trial_end.", param="trial_end")
    anchor_param = p.integer("billing_cycle_anchor", min=0)
    anchor_cfg = p.sub("billing_cycle_anchor_config")
    backdate = p.integer("backdate_start_date", min=0)
    cancel_at_raw = _timestamp_or(p, "cancel_at", {"min_period_end", "max_period_end"})
    cancel_at_period_end = bool(p.boolean("cancel_at_period_end"))
    default_pm, default_source = _default_pm(ctx, p, cus)
    default_rates = _rate_objects(
        ctx, check_rates(ctx, p.strings("default_tax_rates"), "default_tax_rates")
    )
    wanted_discounts = read_discounts(p) or []
    auto_tax = _automatic_tax(p.sub("automatic_tax"), cus)
    trial_settings = _trial_settings(p.sub("trial_settings"))
    payment_settings = _payment_settings(p.sub("payment_settings"))
    billing_mode = _billing_mode(p.sub("billing_mode"))
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
            tax_rates=_rate_objects(ctx, extra.get("tax_rates") or []),
            period=period,
        )
        for price, qty, _given, extra in read
    ]
    _check_items(items, currency, None)
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
    payer = default_pm or default_source or invoicing.payer_for(ctx, customer_id, None)
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
    add_items = _add_invoice_items(ctx, add_items_params, cus, sub_id, currency)
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


def _item_changes(
    ctx: Ctx, sub: Obj, raw_items: list[Any], *, register: bool = True
) -> list[Change]:
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
            price, qty, qty_given, extra = _read_item(ctx, ip, prefix)
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
                tax_rates=_rate_objects(ctx, extra.get("tax_rates") or []),
                period=(start, end),
                register=register,
            )
            changes.append((None, new, None))
            continue
        new = dict(old)
        if "metadata" in extra:
            new["metadata"] = merge_metadata(old["metadata"], extra["metadata"])
        if "tax_rates" in extra:
            new["tax_rates"] = _rate_objects(ctx, extra["tax_rates"])
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
        _check_items(
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
        lifecycle.charge_precheck(ctx, invoicing.payer_for(ctx, sub["customer"], sub))
    if payment_behavior == "pending_if_incomplete" and changes and live and not reset:
        sub = lifecycle.stage_pending_update(ctx, sub, changes, proration_date, fields or {})
        lifecycle.reschedule(ctx, sub)
        ctx.save(sub)
        lifecycle.emit(ctx, "customer.subscription.updated", sub, before or {"items": None})
        return sub
    sub.update(fields or {})
    if reset:
        before.setdefault("items", {"data": [dict(i) for i in items_of(sub)]})
        before.setdefault("billing_cycle_anchor", sub["billing_cycle_anchor"])
        lifecycle.emit(ctx, "customer.subscription.updated", _preview(sub, changes), before)
        lifecycle.reset_anchor(ctx, sub, changes, proration_behavior, proration_date)
        return ctx.get(sub["id"], SUB)
    if changes:
        before.setdefault("items", {"data": [dict(i) for i in items_of(sub)]})
        lifecycle.apply_changes(ctx, sub, changes, proration_behavior="none", proration_date=None)
    lifecycle.reschedule(ctx, sub)
    ctx.save(sub)
    if before:
        lifecycle.emit(ctx, "customer.subscription.updated", sub, before)
    if changes and live and proration_behavior != "none":
        at = proration_date if proration_date is not None else ctx.now
        lifecycle._proration_items(ctx, sub, changes, at)
        if proration_behavior == "always_invoice":
            lifecycle._invoice_pending_now(ctx, sub, "subscription_update")
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
    if status in _ENDED and keys - {"metadata", "cancellation_details"}:
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

    proration = p.string("proration_behavior", choices=_PRORATION) or "create_prorations"
    proration_date = p.integer("proration_date", min=0)
    behavior = p.string("payment_behavior", choices=_PAYMENT_BEHAVIORS) or "allow_incomplete"
    raw_items = p.array("items")
    changes = _item_changes(ctx, sub, raw_items) if raw_items else []
    anchor = p.string("billing_cycle_anchor", choices={"now", "unchanged"})
    if p.has("metadata"):
        put("metadata", merge_metadata(sub["metadata"], p.metadata()))
    if p.has("description"):
        put("description", p.string("description", max_len=500))
    if p.has("default_payment_method") or p.has("default_source"):
        pm, src = _default_pm(ctx, p, cus)
        if p.has("default_payment_method"):
            put("default_payment_method", pm)
        if p.has("default_source"):
            put("default_source", src)
    if p.has("default_tax_rates"):
        ids = check_rates(ctx, p.strings("default_tax_rates"), "default_tax_rates")
        put("default_tax_rates", _rate_objects(ctx, ids))
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
        raw = _timestamp_or(p, "cancel_at", {"min_period_end", "max_period_end"})
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
                "enabled": _automatic_tax(p.sub("automatic_tax"), cus),
                "liability": {"type": "self"},
            },
        )
    if p.has("trial_settings"):
        put("trial_settings", _trial_settings(p.sub("trial_settings")))
    if p.has("payment_settings"):
        put("payment_settings", _payment_settings(p.sub("payment_settings")))
    trial_end = _timestamp_or(p, "trial_end", {"now"})
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
        _add_invoice_items(ctx, p, cus, id, sub["currency"])
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
    if sub["status"] in _ENDED:
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
    proration = p.string("proration_behavior", choices=_PRORATION) or "create_prorations"
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
            return s in _ENDED
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
        predicate=lambda o: o["status"] not in _ENDED,
    )
    for sub in found:
        lifecycle.cancel_now(
            ctx.on_clock(sub.get("test_clock")), sub, reason="cancellation_requested"
        )


DELETE_HOOKS.append(_cancel_on_delete)


# -- subscription items -------------------------------------------------------------------------


def _item_and_sub(ctx: Ctx, item_id: str) -> tuple[Ctx, Obj, Obj]:
    ref = ctx.find(item_id, lifecycle.SI_REF)
    sub = ctx.find(ref["subscription"], SUB) if ref else None
    item = next((i for i in items_of(sub) if i["id"] == item_id), None) if sub else None
    if sub is None or item is None:
        raise missing("subscription_item", item_id)
    return ctx.on_clock(sub.get("test_clock")), sub, item


def _item_behaviors(p: Params) -> tuple[str, int | None, str]:
    proration = p.string("proration_behavior", choices=_PRORATION) or "create_prorations"
    proration_date = p.integer("proration_date", min=0)
    behavior = p.string("payment_behavior", choices=_PAYMENT_BEHAVIORS) or "allow_incomplete"
    p.boolean("off_session")
    return proration, proration_date, behavior


@route("POST", "/v1/subscription_items", perm="subscriptions")
def create_item(ctx: Ctx, p: Params) -> Obj:
    sub_id = p.string("subscription", required=True)
    assert sub_id is not None
    ctx, sub = get_subscription(ctx, sub_id, "subscription")
    proration, proration_date, behavior = _item_behaviors(p)
    raw = {
        k: p.raw(k)
        for k in (
            "price",
            "plan",
            "price_data",
            "quantity",
            "metadata",
            "tax_rates",
            "discounts",
            "billing_thresholds",
        )
        if p.has(k)
    }
    p.done()
    if sub["status"] in _ENDED or sub["status"] == "incomplete":
        raise invalid(f"You cannot add items to a {sub['status']} subscription.")
    changes = _item_changes(ctx, sub, [raw])
    sub = change_items(
        ctx,
        sub,
        changes,
        proration_behavior=proration,
        proration_date=proration_date,
        payment_behavior=behavior,
    )
    new = changes[0][1]
    assert new is not None
    return next(i for i in items_of(sub) if i["id"] == new["id"])


@route("GET", "/v1/subscription_items/{id}", perm="subscriptions")
def retrieve_item(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    return _item_and_sub(ctx, id)[2]


@route("POST", "/v1/subscription_items/{id}", perm="subscriptions")
def update_item(ctx: Ctx, p: Params, id: str) -> Obj:
    ctx, sub, _item = _item_and_sub(ctx, id)
    proration, proration_date, behavior = _item_behaviors(p)
    raw: Obj = {"id": id}
    raw.update(
        {
            k: p.raw(k)
            for k in (
                "price",
                "plan",
                "price_data",
                "quantity",
                "metadata",
                "tax_rates",
                "discounts",
                "billing_thresholds",
            )
            if p.has(k)
        }
    )
    p.done()
    if sub["status"] in _ENDED or sub["status"] == "incomplete":
        raise invalid(f"You cannot update items of a {sub['status']} subscription.")
    changes = _item_changes(ctx, sub, [raw])
    sub = change_items(
        ctx,
        sub,
        changes,
        proration_behavior=proration,
        proration_date=proration_date,
        payment_behavior=behavior,
        before={} if changes else {"items": None},
    )
    return next(i for i in items_of(sub) if i["id"] == id)


@route("DELETE", "/v1/subscription_items/{id}", perm="subscriptions")
def delete_item(ctx: Ctx, p: Params, id: str) -> Obj:
    ctx, sub, item = _item_and_sub(ctx, id)
    proration, proration_date, behavior = _item_behaviors(p)
    p.boolean("clear_usage")
    p.done()
    if len(items_of(sub)) == 1:
        raise invalid(
            "A subscription must have at least one active plan. To cancel a subscription, "
            "please use the cancel API endpoint on /v1/subscriptions."
        )
    change_items(
        ctx,
        sub,
        [(item, None, None)],
        proration_behavior=proration,
        proration_date=proration_date,
        payment_behavior=behavior,
    )
    return {"id": id, "object": "subscription_item", "deleted": True}


@route("GET", "/v1/subscription_items", perm="subscriptions")
def list_items(ctx: Ctx, p: Params) -> Obj:
    sub_id = p.string("subscription", required=True)
    assert sub_id is not None
    limit = p.integer("limit", min=1, max=100) or 10
    after = p.string("starting_after")
    before = p.string("ending_before")
    p.done()
    sub = ctx.get(sub_id, SUB, param="subscription")
    data = items_of(sub)
    ids = [i["id"] for i in data]
    lo = ids.index(after) + 1 if after in ids else 0
    hi = ids.index(before) if before in ids else len(ids)
    page = data[lo:hi][:limit]
    return {
        "object": "list",
        "data": page,
        "has_more": hi - lo > limit,
        "url": f"/v1/subscription_items?subscription={sub_id}",
    }
