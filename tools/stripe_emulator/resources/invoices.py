"""Invoices, their lines and payments: the API over `billing.invoicing`.

Manual invoices (auto_advance false unless asked, pending items only with
`pending_invoice_items_behavior=include`), finalize (numbered), pay (a payment method,
off-session, or out of band), send, void, mark_uncollectible, delete a draft,
`create_preview` (upcoming invoices, with subscription changes and their prorations; ids
`upcoming_in_...`), lines, and invoice payments (`/v1/invoice_payments`, and `payments` /
`confirmation_secret` when expanded).
"""

from __future__ import annotations

import copy
from typing import Any

from ..billing import changes as sub_changes
from ..billing import collection, invoicing, lifecycle
from ..billing.calendar import next_boundary
from ..errors import invalid
from ..expand import includable
from ..params import Params, merge_metadata
from ..router import route
from ..state import Ctx
from ..store import Obj
from .common import list_response, public
from .coupons import make_discounts, read_discounts
from .customers import check_default_payment_method
from .tax_rates import check_rates

__all__: list[str] = []

_KIND = invoicing.INVOICE
_PAYMENT = invoicing.PAYMENT


def _get(ctx: Ctx, inv_id: str) -> tuple[Ctx, Obj]:
    inv = ctx.get(inv_id, _KIND)
    return ctx.on_clock(inv.get("test_clock")), inv


def automatic_tax(p: Params | None) -> bool | None:
    if p is None:
        return None
    enabled = bool(p.boolean("enabled", required=True))
    p.raw("liability")
    p.done()
    return enabled


@route("POST", "/v1/invoices", perm="invoices")
def create(ctx: Ctx, p: Params) -> Obj:
    customer_id = p.string("customer", required=True)
    cus = ctx.get(str(customer_id), "customer", param="customer")
    ctx = ctx.on_clock(cus.get("test_clock"))
    auto_advance = bool(p.boolean("auto_advance"))
    method = (
        p.string("collection_method", choices={"charge_automatically", "send_invoice"})
        or "charge_automatically"
    )
    days = p.integer("days_until_due", min=0, max=730)
    due_date = p.integer("due_date", min=0)
    if method == "send_invoice" and days is None and due_date is None:
        raise invalid("Missing required param: days_until_due or due_date.", param="days_until_due")
    if method != "send_invoice" and (days is not None or due_date is not None):
        raise invalid(
            "days_until_due and due_date are only for collection_method=send_invoice.",
            param="days_until_due",
        )
    behavior = p.string("pending_invoice_items_behavior", choices={"exclude", "include"})
    sub_id = p.string("subscription")
    if sub_id is not None:
        sub = ctx.get(sub_id, "subscription", param="subscription")
        if sub["customer"] != cus["id"]:
            raise invalid("The subscription belongs to another customer.", param="subscription")
    pm = p.string("default_payment_method")
    if pm:
        check_default_payment_method(ctx, cus, pm, "default_payment_method")
    rates = check_rates(ctx, p.strings("default_tax_rates"), "default_tax_rates")
    wanted = read_discounts(p) or []
    auto_tax = automatic_tax(p.sub("automatic_tax")) or False
    currency = p.currency("currency")
    description = p.string("description", max_len=1500)
    metadata = p.metadata()
    footer = p.string("footer", max_len=5000)
    finalizes_at = p.integer("automatically_finalizes_at", min=0)
    default_source = p.string("default_source")
    for passthrough in (
        "account_tax_ids",
        "application_fee_amount",
        "custom_fields",
        "effective_at",
        "from_invoice",
        "issuer",
        "number",
        "on_behalf_of",
        "payment_settings",
        "rendering",
        "shipping_cost",
        "shipping_details",
        "statement_descriptor",
        "transfer_data",
        "customer_account",
    ):
        p.raw(passthrough)
    p.done()
    pending = []
    if behavior == "include" or sub_id is not None:
        pending = invoicing.pending_items(ctx, cus["id"], sub_id, with_free=sub_id is None)
    currency = currency or (pending[0]["currency"] if pending else None) or cus["currency"]
    currency = currency or ctx.config.default_currency
    inv = invoicing.new_invoice(
        ctx,
        cus,
        billing_reason="manual",
        currency=currency,
        auto_advance=auto_advance,
        collection_method=method,
        days_until_due=days,
        due_date=due_date,
        description=description,
        metadata=metadata,
        default_payment_method=pm,
        default_source=default_source,
        default_tax_rates=rates,
        automatic_tax=auto_tax,
    )
    inv["footer"] = footer
    if finalizes_at is not None and auto_advance:
        inv["automatically_finalizes_at"] = finalizes_at
    inv["discounts"] = make_discounts(ctx, wanted, customer=cus["id"], invoice=inv["id"])
    invoicing.attach_items(ctx, inv, [ii for ii in pending if ii["currency"] == currency])
    invoicing.recompute(ctx, inv, cus)
    ctx.insert(inv, ("customer", "_sub"))
    invoicing.emit(ctx, "invoice.created", inv)
    if inv["auto_advance"] and inv["automatically_finalizes_at"] is not None:
        from ..billing import timeline

        timeline.set_wake(ctx, inv, inv["automatically_finalizes_at"])
        ctx.save(inv)
    return invoicing.view(inv)


@route("GET", "/v1/invoices/{id}", perm="invoices")
def retrieve(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    return invoicing.view(ctx.get(id, _KIND))


@route("POST", "/v1/invoices/{id}", perm="invoices")
def update(ctx: Ctx, p: Params, id: str) -> Obj:
    ctx, inv = _get(ctx, id)
    draft = inv["status"] == "draft"
    before: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        if value != inv[key]:
            before[key] = inv[key]
            inv[key] = value

    draft_only = {
        "collection_method",
        "days_until_due",
        "due_date",
        "default_tax_rates",
        "discounts",
        "automatic_tax",
        "currency",
        "default_payment_method",
        "default_source",
    }
    touched = draft_only & set(p.keys())
    if touched and not draft:
        raise invalid(
            f"You can only update {sorted(touched)[0]} on a draft invoice; this invoice is "
            f"{inv['status']}.",
            param=sorted(touched)[0],
        )
    if inv["status"] in ("paid", "void") and set(p.keys()) - {
        "metadata",
        "description",
        "footer",
        "expand",
    }:
        raise invalid(f"This invoice is {inv['status']}; only metadata can change.")
    if p.has("metadata"):
        put("metadata", merge_metadata(inv["metadata"], p.metadata()))
    if p.has("description"):
        put("description", p.string("description", max_len=1500))
    if p.has("footer"):
        put("footer", p.string("footer", max_len=5000))
    if p.has("auto_advance"):
        put("auto_advance", bool(p.boolean("auto_advance")))
    if p.has("collection_method"):
        put(
            "collection_method",
            p.string("collection_method", choices={"charge_automatically", "send_invoice"}),
        )
    if p.has("days_until_due"):
        inv["_days_until_due"] = p.integer("days_until_due", min=0, max=730)
    if p.has("due_date"):
        put("due_date", p.integer("due_date", min=0))
    if p.has("default_payment_method"):
        pm = p.string("default_payment_method")
        if pm:
            cus = ctx.get(inv["customer"], "customer")
            check_default_payment_method(ctx, cus, pm, "default_payment_method")
        put("default_payment_method", pm)
    if p.has("default_source"):
        put("default_source", p.string("default_source"))
    if p.has("default_tax_rates"):
        put(
            "default_tax_rates",
            check_rates(ctx, p.strings("default_tax_rates"), "default_tax_rates"),
        )
    if p.has("discounts"):
        wanted = read_discounts(p) or []
        put(
            "discounts",
            make_discounts(
                ctx, wanted, customer=inv["customer"], invoice=id, existing=inv["discounts"]
            ),
        )
    if p.has("automatic_tax"):
        enabled = automatic_tax(p.sub("automatic_tax"))
        tax = dict(inv["automatic_tax"])
        tax["enabled"] = bool(enabled)
        put("automatic_tax", tax)
    if p.has("automatically_finalizes_at"):
        put("automatically_finalizes_at", p.integer("automatically_finalizes_at", min=0))
    for passthrough in (
        "account_tax_ids",
        "custom_fields",
        "effective_at",
        "issuer",
        "number",
        "on_behalf_of",
        "payment_settings",
        "rendering",
        "shipping_cost",
        "shipping_details",
        "statement_descriptor",
        "transfer_data",
        "application_fee_amount",
    ):
        p.raw(passthrough)
    p.done()
    if draft:
        invoicing.recompute(ctx, inv)
        from ..billing import timeline

        if inv["auto_advance"] and inv["automatically_finalizes_at"] is None:
            inv["automatically_finalizes_at"] = ctx.now + ctx.config.billing.finalize_after_s
        if not inv["auto_advance"]:
            inv["automatically_finalizes_at"] = None
        timeline.set_wake(
            ctx, inv, inv["automatically_finalizes_at"] if inv["auto_advance"] else None
        )
    ctx.save(inv)
    if before:
        invoicing.emit(ctx, "invoice.updated", inv, before)
    return invoicing.view(inv)


@route("DELETE", "/v1/invoices/{id}", perm="invoices")
def delete(ctx: Ctx, p: Params, id: str) -> Obj:
    ctx, inv = _get(ctx, id)
    p.done()
    if inv["status"] != "draft":
        raise invalid("You can only delete draft invoices. Use void for a finalized invoice.")
    if inv.get("_sub"):
        raise invalid("A subscription's draft invoice cannot be deleted; void it once finalized.")
    for line in inv["lines"]["data"]:
        ii = ctx.find(line.get("_ii"), invoicing.ITEM) if line.get("_ii") else None
        if ii is not None:  # the item is pending again, for a later invoice
            ii["invoice"] = None
            ctx.save(ii)
    ctx.store.delete(id)
    invoicing.emit(ctx, "invoice.deleted", inv)
    return {"id": id, "object": _KIND, "deleted": True}


@route("POST", "/v1/invoices/{id}/finalize", perm="invoices")
def finalize(ctx: Ctx, p: Params, id: str) -> Obj:
    ctx, inv = _get(ctx, id)
    auto = p.boolean("auto_advance")
    p.done()
    if inv["status"] != "draft":
        raise invalid(
            "This invoice is already finalized, you can't re-finalize a non-draft invoice.",
            code="invoice_not_editable",
        )
    inv = invoicing.finalize(ctx, inv, api=True, auto_advance=auto)
    return invoicing.view(inv)


@route("POST", "/v1/invoices/{id}/pay", perm="invoices")
def pay(ctx: Ctx, p: Params, id: str) -> Obj:
    ctx, inv = _get(ctx, id)
    pm = p.string("payment_method")
    source = p.string("source")
    out_of_band = bool(p.boolean("paid_out_of_band"))
    off_session = bool(p.boolean("off_session"))
    p.boolean("forgive")
    p.string("mandate")
    p.done()
    if inv["status"] == "paid":
        raise invalid("Invoice is already paid.")
    if inv["status"] == "void":
        raise invalid("You cannot pay a void invoice.")
    if inv["status"] == "draft":
        inv = invoicing.finalize(ctx, inv, api=True)
        if inv["status"] == "paid":
            return invoicing.view(inv)
    if out_of_band:
        invoicing._cancel_payment(ctx, inv)
        inv = ctx.get(id, _KIND)
        collection.paid(ctx, inv, None)
        return invoicing.view(ctx.get(id, _KIND))
    inv = collection.attempt_payment(
        ctx, inv, automatic=False, pm_id=pm or source, off_session=off_session, raise_errors=True
    )
    return invoicing.view(inv)


@route("POST", "/v1/invoices/{id}/send", perm="invoices")
def send(ctx: Ctx, p: Params, id: str) -> Obj:
    ctx, inv = _get(ctx, id)
    p.done()
    if inv["status"] == "draft":
        inv = invoicing.finalize(ctx, inv, api=True)
    if inv["status"] in ("void", "uncollectible"):
        raise invalid(f"You cannot send a {inv['status']} invoice.")
    invoicing.emit(ctx, "invoice.sent", inv)
    return invoicing.view(inv)


@route("POST", "/v1/invoices/{id}/void", perm="invoices")
def void(ctx: Ctx, p: Params, id: str) -> Obj:
    ctx, inv = _get(ctx, id)
    p.done()
    if inv["status"] not in ("open", "uncollectible"):
        raise invalid(
            f"You can only void an open or uncollectible invoice; this invoice is {inv['status']}."
        )
    return invoicing.view(invoicing.void(ctx, inv))


@route("POST", "/v1/invoices/{id}/mark_uncollectible", perm="invoices")
def mark_uncollectible(ctx: Ctx, p: Params, id: str) -> Obj:
    ctx, inv = _get(ctx, id)
    p.done()
    if inv["status"] != "open":
        raise invalid(
            f"You can only mark an open invoice uncollectible; this invoice is {inv['status']}."
        )
    return invoicing.view(invoicing.mark_uncollectible(ctx, inv))


@route("GET", "/v1/invoices/{id}/lines", perm="invoices")
def lines(ctx: Ctx, p: Params, id: str) -> Obj:
    limit = p.integer("limit", min=1, max=100) or 10
    after = p.string("starting_after")
    before = p.string("ending_before")
    p.done()
    inv = ctx.get(id, _KIND)
    data = [invoicing._line_view(line) for line in inv["lines"]["data"]]
    ids = [line["id"] for line in data]
    lo = ids.index(after) + 1 if after in ids else 0
    hi = ids.index(before) if before in ids else len(ids)
    return {
        "object": "list",
        "data": data[lo:hi][:limit],
        "has_more": hi - lo > limit,
        "url": f"/v1/invoices/{id}/lines",
    }


@route("GET", "/v1/invoices", perm="invoices")
def list_(ctx: Ctx, p: Params) -> Obj:
    customer = p.string("customer")
    subscription = p.string("subscription")
    status = p.string("status", choices={"draft", "open", "paid", "uncollectible", "void"})
    method = p.string("collection_method", choices={"charge_automatically", "send_invoice"})
    p.raw("due_date")

    def pred(o: Obj) -> bool:
        return (
            (customer is None or o["customer"] == customer)
            and (subscription is None or o.get("_sub") == subscription)
            and (status is None or o["status"] == status)
            and (method is None or o["collection_method"] == method)
        )

    where = (
        ("_sub", subscription) if subscription else (("customer", customer) if customer else None)
    )
    page = list_response(ctx, p, _KIND, "/v1/invoices", where=where, predicate=pred)
    page["data"] = [invoicing.view(o) for o in page["data"]]
    return page


# -- invoice payments -----------------------------------------------------------------------------


@route("GET", "/v1/invoice_payments/{id}", perm="invoices")
def retrieve_payment(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    return public(ctx.get(id, _PAYMENT))


@route("GET", "/v1/invoice_payments", perm="invoices")
def list_payments(ctx: Ctx, p: Params) -> Obj:
    invoice = p.string("invoice")
    status = p.string("status", choices={"canceled", "open", "paid"})
    payment = p.sub("payment")
    pi = None
    if payment is not None:
        payment.string("type", required=True, choices={"payment_intent"})
        pi = payment.string("payment_intent")
        payment.done()
    where = ("invoice", invoice) if invoice else (("_pi", pi) if pi else None)

    def pred(o: Obj) -> bool:
        return (status is None or o["status"] == status) and (pi is None or o["_pi"] == pi)

    page = list_response(ctx, p, _PAYMENT, "/v1/invoice_payments", where=where, predicate=pred)
    page["data"] = [public(o) for o in page["data"]]
    return page


@includable("invoice", "payments")
def _include_payments(ctx: Ctx, inv: Obj) -> Any:
    if not inv.get("id"):
        return {"object": "list", "data": [], "has_more": False, "url": "/v1/invoice_payments"}
    found, more = ctx.store.page(ctx.account, _PAYMENT, limit=10, where=("invoice", inv["id"]))
    return {
        "object": "list",
        "data": [public(o) for o in found],
        "has_more": more,
        "url": f"/v1/invoice_payments?invoice={inv['id']}",
    }


@includable("invoice", "confirmation_secret")
def _include_secret(ctx: Ctx, inv: Obj) -> Any:
    pay = ctx.store.first(ctx.account, _PAYMENT, "invoice", inv.get("id") or "")
    pi = ctx.find(pay["_pi"], "payment_intent") if pay else None
    if pi is None:
        return None
    return {"client_secret": pi["client_secret"], "type": "payment_intent"}


# -- preview ------------------------------------------------------------------------------------


@route("POST", "/v1/invoices/create_preview", perm="invoices")
def create_preview(ctx: Ctx, p: Params) -> Obj:
    from .subscription_params import rate_objects, read_item
    from .subscription_updates import item_changes

    sub_id = p.string("subscription")
    sub = ctx.get(sub_id, "subscription", param="subscription") if sub_id else None
    customer_id = p.string("customer") or (sub or {}).get("customer")
    if customer_id is None:
        raise invalid("Missing required param: customer.", param="customer")
    cus = ctx.get(customer_id, "customer", param="customer")
    ctx = ctx.on_clock(cus.get("test_clock"))
    now = ctx.now
    details = p.sub("subscription_details")
    proration = "create_prorations"
    proration_date = None
    raw_items: list[Any] = []
    cancel_now = False
    if details is not None:
        proration = details.string(
            "proration_behavior", choices={"always_invoice", "create_prorations", "none"}
        ) or ("create_prorations")
        proration_date = details.integer("proration_date", min=0)
        raw_items = details.array("items") or []
        cancel_now = bool(details.boolean("cancel_now"))
        for passthrough in (
            "billing_cycle_anchor",
            "billing_mode",
            "billing_schedules",
            "cancel_at",
            "cancel_at_period_end",
            "default_tax_rates",
            "metadata",
            "pause",
            "resume_at",
            "start_date",
            "trial_end",
        ):
            details.raw(passthrough)
        details.done()
    wanted = read_discounts(p) or []
    auto_tax = automatic_tax(p.sub("automatic_tax"))
    extra_items = p.array("invoice_items") or []
    currency = p.currency("currency")
    for passthrough in (
        "customer_details",
        "issuer",
        "on_behalf_of",
        "preview_mode",
        "schedule",
        "schedule_details",
        "customer_account",
    ):
        p.raw(passthrough)
    p.done()
    lines: list[Obj] = []
    if sub is not None:
        work = copy.deepcopy(sub)
        inv = invoicing.new_invoice(
            ctx,
            cus,
            billing_reason="upcoming",
            currency=work["currency"],
            auto_advance=False,
            collection_method=work["collection_method"],
            sub=work,
            default_tax_rates=[r["id"] for r in work["default_tax_rates"]],
            discounts=list(work["discounts"]),
            automatic_tax=work["automatic_tax"]["enabled"] if auto_tax is None else auto_tax,
        )
        changes = item_changes(ctx, work, raw_items) if raw_items else []
        at = proration_date if proration_date is not None else now
        prorations = []
        live = work["status"] in ("active", "past_due", "unpaid")
        if (changes or cancel_now) and proration != "none" and live:
            pairs: list[sub_changes.Change] = (
                changes if not cancel_now else [(i, None, None) for i in lifecycle.items_of(work)]
            )
            for item, amount, credit in sub_changes.proration_amounts(ctx, work, pairs, at):
                ii = sub_changes.build_proration_item(ctx, work, item, amount, at, credit=credit)
                prorations.append(invoicing.item_line(inv, ii))
        sub_changes.apply_changes(
            ctx, work, changes, proration_behavior="none", proration_date=None
        )
        start, end = lifecycle.period_of(work)
        if proration == "always_invoice" or cancel_now:
            inv["period_start"], inv["period_end"] = at, end
            lines.extend(prorations)
        else:
            interval, count = lifecycle._recurring(work)
            nxt = (end, next_boundary(work["billing_cycle_anchor"], interval, count, end))
            inv["period_start"], inv["period_end"] = start, end
            for ii in invoicing.pending_items(ctx, cus["id"], work["id"], with_free=True):
                lines.append(invoicing.item_line(inv, ii))
            lines.extend(prorations)
            lifecycle._item_lines(ctx, work, inv, advance=nxt, arrears=(start, end))
            lines.extend(inv["lines"]["data"])
    else:
        if not raw_items and not extra_items:
            for ii in invoicing.pending_items(ctx, cus["id"], None, with_free=True):
                lines.append(ii)
        first_currency = currency or cus["currency"] or ctx.config.default_currency
        inv = invoicing.new_invoice(
            ctx,
            cus,
            billing_reason="upcoming",
            currency=first_currency,
            auto_advance=False,
            automatic_tax=bool(auto_tax),
        )
        lines = [invoicing.item_line(inv, ii) for ii in lines]
        for i, raw in enumerate(raw_items):
            ip = Params(raw if isinstance(raw, dict) else None, f"subscription_details[items][{i}]")
            price, qty, _given, extra = read_item(ctx, ip, f"subscription_details[items][{i}]")
            ip.done()
            inv["currency"] = price["currency"]
            rec = price["recurring"]
            end = next_boundary(now, rec["interval"], int(rec["interval_count"]), now)
            item = lifecycle.new_item(
                ctx,
                "sub_preview",
                price,
                qty,
                metadata=extra.get("metadata"),
                tax_rates=rate_objects(ctx, extra.get("tax_rates") or []),
                period=(now, end),
            )
            fake = {"id": "sub_preview", "metadata": {}}
            if not lifecycle.is_metered(item):
                lines.append(
                    invoicing.sub_line(
                        inv,
                        fake,
                        item,
                        amount=lifecycle.item_amount(ctx, item),
                        quantity=item["quantity"],
                        period=(now, end),
                        description=lifecycle.describe(ctx, item),
                    )
                )
    for i, raw in enumerate(extra_items):
        ip = Params(raw if isinstance(raw, dict) else None, f"invoice_items[{i}]")
        lines.append(_preview_item_line(ctx, inv, cus, ip))
    inv["lines"]["data"] = lines
    preview_discounts = []
    for kind, value, _param in wanted:
        from .coupons import coupon_of

        if kind == "coupon":
            coupon = ctx.get(value, "coupon", param=_param)
            preview_discounts.append((f"di_preview_{value}", coupon))
        elif kind == "promotion_code":
            promo = ctx.get(value, "promotion_code", param=_param)
            coupon = ctx.get(promo["promotion"]["coupon"], "coupon", param=_param)
            preview_discounts.append((f"di_preview_{value}", coupon))
        else:
            discount = ctx.get(value, "discount", param=_param)
            preview_discounts.append((value, coupon_of(discount)))
    if preview_discounts:
        inv["discounts"] = [d for d, _ in preview_discounts]
    invoicing.recompute(ctx, inv, cus, extra_discounts=preview_discounts or None)
    view = invoicing.view(inv)
    view["id"] = "upcoming_in_" + inv["id"][3:]
    for line in view["lines"]["data"]:
        line["invoice"] = view["id"]
    return view


def _preview_item_line(ctx: Ctx, inv: Obj, cus: Obj, ip: Params) -> Obj:
    """invoice_items[] of a preview: lines only, nothing stored."""
    from ..billing.amounts import price_amount
    from .prices import tiers_of

    amount = ip.integer("amount")
    qty = ip.integer("quantity", min=0) or 1
    price_id = ip.string("price")
    description = ip.string("description")
    for passthrough in (
        "currency",
        "discountable",
        "discounts",
        "invoiceitem",
        "metadata",
        "period",
        "price_data",
        "quantity_decimal",
        "tax_behavior",
        "tax_code",
        "tax_rates",
        "unit_amount",
        "unit_amount_decimal",
    ):
        ip.raw(passthrough)
    ip.done()
    price = ctx.get(price_id, "price", param="price") if price_id else None
    if price is not None:
        amount = price_amount(price, qty, tiers_of(ctx, price))
    ii = {
        "id": "ii_preview",
        "amount": amount or 0,
        "quantity": qty,
        "quantity_decimal": str(qty),
        "period": {"start": ctx.now, "end": ctx.now},
        "description": description or "",
        "discountable": True,
        "metadata": {},
        "proration": False,
        "parent": None,
        "pricing": {
            "price_details": {"price": price["id"], "product": price["product"]} if price else None
        },
        "tax_rates": [],
    }
    return invoicing.item_line(inv, ii)
