"""Invoice items: one-off charges (or credits) pending for a customer's next invoice, or
added to a draft invoice. An amount, a one-time price (`pricing[price]`) or `price_data`;
tax rates, discounts flag, period. Subscription prorations are invoice items too.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..billing import invoicing
from ..billing.amounts import price_amount
from ..errors import invalid
from ..params import Params, merge_metadata
from ..router import route
from ..state import Ctx
from ..store import Obj
from .common import list_response, public
from .prices import price_from_item, tiers_of
from .tax_rates import check_rates

__all__ = ["item_view", "new_invoice_item"]

_KIND = invoicing.ITEM


def item_view(ii: Obj) -> Obj:
    return public(ii)


def new_invoice_item(
    ctx: Ctx,
    p: Params,
    cus: Obj,
    *,
    currency: str | None = None,
    subscription: str | None = None,
    invoice: str | None = None,
    prefix: str = "",
) -> Obj:
    """Build, store and announce (invoiceitem.created) a pending invoice item."""
    amount = p.integer("amount")
    quantity = p.integer("quantity", min=0)
    unit_decimal = p.string("unit_amount_decimal")
    pricing = p.sub("pricing") if not prefix else None
    price: Obj | None = None
    if pricing is not None:
        pid = pricing.string("price", required=True)
        pricing.done()
        price = ctx.get(str(pid), "price", param="pricing[price]")
    elif p.has("price_data") or (prefix and p.has("price")):
        price = price_from_item(ctx, p, prefix or "invoice_item", recurring=False, allow_plan=False)
    given_currency = p.currency("currency")
    currency = given_currency or (price or {}).get("currency") or currency or cus["currency"]
    if currency is None:
        raise invalid("Missing required param: currency.", param=_param(prefix, "currency"))
    if price is not None and price["currency"] != currency:
        raise invalid(
            "The price's currency does not match the invoice item's.",
            param=_param(prefix, "currency"),
        )
    qty = Decimal(quantity if quantity is not None else 1)
    if price is not None:
        if price.get("recurring") is not None:
            raise invalid(
                "The price specified is set to `type=recurring` but this field only accepts "
                "prices with `type=one_time`.",
                param=_param(prefix, "price"),
            )
        total = price_amount(price, qty, tiers_of(ctx, price))
        unit = str(price["unit_amount_decimal"])
    elif unit_decimal is not None:
        total = int((Decimal(unit_decimal) * qty).to_integral_value())
        unit = unit_decimal
    elif amount is not None:
        total = amount
        unit = format((Decimal(amount) / qty).normalize(), "f") if qty else "0"
    else:
        raise invalid("Missing required param: amount.", param=_param(prefix, "amount"))
    period = p.sub("period")
    now = ctx.now
    start = end = now
    if period is not None:
        start = _period_point(period, "start") or now
        end = _period_point(period, "end") or now
        period.done()
    rates = check_rates(ctx, p.strings("tax_rates"), _param(prefix, "tax_rates"))
    discountable = p.boolean("discountable")
    behavior = p.string("tax_behavior", choices={"exclusive", "inclusive", "unspecified"})
    if p.has("discounts") and p.raw("discounts") not in ("", None):
        raise invalid(
            "Invoice item discounts are not supported by the emulator; discount the "
            "invoice or subscription.",
            param=_param(prefix, "discounts"),
        )
    p.string("tax_code")
    p.string("customer_account")
    ii: Obj = {
        "id": ctx.new_id("ii"),
        "object": _KIND,
        "amount": total,
        "currency": currency,
        "customer": cus["id"],
        "customer_account": None,
        "date": now,
        "description": p.string("description", max_len=5000),
        "discountable": (total >= 0) if discountable is None else discountable,
        "discounts": [],
        "invoice": invoice,
        "livemode": False,
        "metadata": p.metadata() or {},
        "net_amount": total,
        "parent": {
            "subscription_details": {"subscription": subscription},
            "type": "subscription_details",
        }
        if subscription
        else None,
        "period": {"end": end, "start": start},
        "pricing": {
            "price_details": {"price": price["id"], "product": price["product"]} if price else None,
            "type": "price_details",
            "unit_amount_decimal": unit,
        },
        "proration": False,
        "quantity": int(qty),
        "quantity_decimal": format(qty, "f"),
        "tax_rates": [public(ctx.get(r, "tax_rate")) for r in rates],
        "test_clock": cus.get("test_clock"),
        "_behavior": behavior or (price or {}).get("tax_behavior") or "exclusive",
    }
    ctx.insert(ii, ("customer", "invoice"))
    ctx.emit("invoiceitem.created", item_view(ii))
    return ii


def _param(prefix: str, key: str) -> str:
    return f"{prefix}[{key}]" if prefix else key


def _period_point(p: Params, key: str) -> int | None:
    raw = p.raw(key)
    if isinstance(raw, dict):
        sub = p.sub(key)
        assert sub is not None
        sub.string("type")
        ts = sub.integer("timestamp", min=0)
        sub.done()
        return ts
    return p.integer(key, min=0)


def _draft(ctx: Ctx, invoice_id: str, param: str) -> Obj:
    inv = ctx.get(invoice_id, invoicing.INVOICE, param=param)
    if inv["status"] != "draft":
        raise invalid(
            f"Invoice {invoice_id} is no longer editable: invoice items can only be added to "
            "draft invoices.",
            param=param,
            code="invoice_not_editable",
        )
    return inv


def _refresh_invoice(ctx: Ctx, inv: Obj) -> None:
    invoicing.recompute(ctx, inv)
    ctx.save(inv)


@route("POST", "/v1/invoiceitems", perm="invoices")
def create(ctx: Ctx, p: Params) -> Obj:
    invoice_id = p.string("invoice")
    inv = _draft(ctx, invoice_id, "invoice") if invoice_id else None
    customer = p.string("customer", required=inv is None) or (inv or {}).get("customer")
    cus = ctx.get(str(customer), "customer", param="customer")
    if inv is not None and inv["customer"] != cus["id"]:
        raise invalid("The invoice belongs to another customer.", param="invoice")
    ctx = ctx.on_clock(cus.get("test_clock"))
    sub_id = p.string("subscription")
    if sub_id is not None:
        sub = ctx.get(sub_id, "subscription", param="subscription")
        if sub["customer"] != cus["id"]:
            raise invalid("The subscription belongs to another customer.", param="subscription")
    ii = new_invoice_item(
        ctx, p, cus, currency=(inv or {}).get("currency"), subscription=sub_id, invoice=invoice_id
    )
    p.done()
    if inv is not None:
        inv["lines"]["data"].append(invoicing.item_line(inv, ii))
        _refresh_invoice(ctx, inv)
    if cus["currency"] is None:
        cus["currency"] = ii["currency"]
        ctx.save(cus)
    return item_view(ii)


@route("GET", "/v1/invoiceitems/{id}", perm="invoices")
def retrieve(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    return item_view(ctx.get(id, _KIND))


def _editable(ctx: Ctx, ii: Obj) -> Obj | None:
    if ii["invoice"] is None:
        return None
    return _draft(ctx, ii["invoice"], "id")


@route("POST", "/v1/invoiceitems/{id}", perm="invoices")
def update(ctx: Ctx, p: Params, id: str) -> Obj:
    ii = ctx.get(id, _KIND)
    inv = _editable(ctx, ii)
    before: dict[str, Any] = {}
    if p.has("amount"):
        amount = p.integer("amount", required=True)
        before["amount"] = ii["amount"]
        ii["amount"] = ii["net_amount"] = amount
        ii["pricing"]["unit_amount_decimal"] = str(amount)
        ii["quantity"], ii["quantity_decimal"] = 1, "1"
    if p.has("description"):
        ii["description"] = p.string("description", max_len=5000)
    if p.has("metadata"):
        ii["metadata"] = merge_metadata(ii["metadata"], p.metadata())
    if p.has("discountable"):
        ii["discountable"] = bool(p.boolean("discountable"))
    if p.has("tax_rates"):
        rates = check_rates(ctx, p.strings("tax_rates"), "tax_rates")
        ii["tax_rates"] = [public(ctx.get(r, "tax_rate")) for r in rates]
    period = p.sub("period")
    if period is not None:
        ii["period"] = {
            "end": _period_point(period, "end"),
            "start": _period_point(period, "start"),
        }
        period.done()
    p.done()
    ctx.save(ii)
    if inv is not None:
        lines = inv["lines"]["data"]
        for i, line in enumerate(lines):
            if line.get("_ii") == id:
                lines[i] = invoicing.item_line(inv, ii)
        _refresh_invoice(ctx, inv)
    return item_view(ii)


@route("DELETE", "/v1/invoiceitems/{id}", perm="invoices")
def delete(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    ii = ctx.get(id, _KIND)
    inv = _editable(ctx, ii)
    ctx.store.delete(id)
    if inv is not None:
        inv["lines"]["data"] = [ln for ln in inv["lines"]["data"] if ln.get("_ii") != id]
        _refresh_invoice(ctx, inv)
    ctx.emit("invoiceitem.deleted", item_view(ii))
    return {"id": id, "object": _KIND, "deleted": True}


@route("GET", "/v1/invoiceitems", perm="invoices")
def list_(ctx: Ctx, p: Params) -> Obj:
    customer = p.string("customer")
    invoice = p.string("invoice")
    pending = p.boolean("pending")

    def pred(o: Obj) -> bool:
        return (
            (customer is None or o["customer"] == customer)
            and (invoice is None or o["invoice"] == invoice)
            and (pending is None or (o["invoice"] is None) == pending)
        )

    where = ("invoice", invoice) if invoice else (("customer", customer) if customer else None)
    page = list_response(ctx, p, _KIND, "/v1/invoiceitems", where=where, predicate=pred)
    page["data"] = [item_view(o) for o in page["data"]]
    return page
