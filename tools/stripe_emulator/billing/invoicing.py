"""An invoice's life: lines and totals, finalization, void, uncollectible.

draft --finalize--> open --paid--> paid; open --void--> void; open --mark_uncollectible-->
uncollectible (still payable or voidable). Subscription drafts are finalized
`billing.finalize_after_s` (1 h) after invoice.created, on their own timeline; one-off
drafts only with auto_advance. Finalizing numbers the invoice, refreshes metered usage
(reported until then counts: Stripe's grace period), applies the customer's balance (a
credit pays first, a debit is added, an amount below the currency's minimum charge is
carried to the balance), and for charge_automatically creates its PaymentIntent; a zero
amount due is paid at once. Collection (attempts, dunning) lives in `collection`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .. import ids
from ..errors import invalid
from ..expand import viewer
from ..params import ZERO_DECIMAL
from ..state import Ctx
from ..store import Obj
from . import timeline
from .amounts import TaxRate, compute_totals, price_amount
from .calendar import DAY

__all__ = [
    "INVOICE",
    "ITEM",
    "PAYMENT",
    "finalize",
    "item_line",
    "mark_uncollectible",
    "new_invoice",
    "payment_intent_of",
    "pending_items",
    "recompute",
    "sub_line",
    "view",
    "void",
]

INVOICE = "invoice"
ITEM = "invoiceitem"
PAYMENT = "invoice_payment"
LINES_SHOWN = 10
_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cad": "CA$", "aud": "A$"}
_MINIMUM = {"usd": 50, "eur": 50, "gbp": 30, "jpy": 50, "cad": 50, "aud": 50}


def money(amount: int, currency: str) -> str:
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    text = str(amount) if currency in ZERO_DECIMAL else f"{amount / 100:,.2f}"
    symbol = _SYMBOLS.get(currency)
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency.upper()}"


@viewer(INVOICE)
def view(inv: Obj) -> Obj:
    """An invoice as answered: no bookkeeping, its first lines only (the rest by paging)."""
    out = {k: v for k, v in inv.items() if k[0] != "_"}
    lines = inv["lines"]["data"]
    shown = [_line_view(line) for line in lines[:LINES_SHOWN]]
    out["lines"] = {**inv["lines"], "data": shown, "has_more": len(lines) > LINES_SHOWN}
    return out


def _line_view(line: Obj) -> Obj:
    return {k: v for k, v in line.items() if k[0] != "_"}


def emit(ctx: Ctx, type_: str, inv: Obj, previous: dict[str, Any] | None = None) -> None:
    ctx.emit(type_, view(inv), previous)


# -- building -----------------------------------------------------------------------------------


def new_invoice(
    ctx: Ctx,
    cus: Obj,
    *,
    billing_reason: str,
    currency: str,
    auto_advance: bool,
    collection_method: str = "charge_automatically",
    sub: Obj | None = None,
    days_until_due: int | None = None,
    due_date: int | None = None,
    description: str | None = None,
    metadata: dict[str, str] | None = None,
    default_payment_method: str | None = None,
    default_source: str | None = None,
    default_tax_rates: list[str] | None = None,
    discounts: list[str] | None = None,
    automatic_tax: bool = False,
    period: tuple[int, int] | None = None,
) -> Obj:
    """A draft invoice (not stored)."""
    inv_id = ctx.new_id("in")
    now = ctx.now
    start, end = period or (now, now)
    parent = None
    if sub is not None:
        parent = {
            "quote_details": None,
            "subscription_details": {"metadata": dict(sub["metadata"]), "subscription": sub["id"]},
            "type": "subscription_details",
        }
    finalize_at = now + ctx.config.billing.finalize_after_s if auto_advance else None
    return {
        "id": inv_id,
        "object": INVOICE,
        "account_country": ctx.config.country,
        "account_name": "payplane (emulated platform)",
        "account_tax_ids": None,
        "amount_due": 0,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_remaining": 0,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": auto_advance,
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": automatic_tax,
            "liability": {"type": "self"} if automatic_tax else None,
            "provider": "stripe" if automatic_tax else None,
            "status": None,
        },
        "automatically_finalizes_at": finalize_at,
        "billing_reason": billing_reason,
        "collection_method": collection_method,
        "created": now,
        "currency": currency,
        "custom_fields": None,
        "customer": cus["id"],
        "customer_account": None,
        "customer_address": cus["address"],
        "customer_email": cus["email"],
        "customer_name": cus["name"],
        "customer_phone": cus["phone"],
        "customer_shipping": cus["shipping"],
        "customer_tax_exempt": cus["tax_exempt"],
        "customer_tax_ids": [],
        "default_payment_method": default_payment_method,
        "default_source": default_source,
        "default_tax_rates": default_tax_rates or [],
        "description": description,
        "discounts": discounts or [],
        "due_date": due_date,
        "effective_at": None,
        "ending_balance": None,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": {
            "object": "list",
            "data": [],
            "has_more": False,
            "url": f"/v1/invoices/{inv_id}/lines",
        },
        "livemode": False,
        "metadata": metadata or {},
        "next_payment_attempt": None,
        "number": None,
        "on_behalf_of": None,
        "parent": parent,
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "period_end": end,
        "period_start": start,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": "draft",
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subscription": None,
        "subtotal": 0,
        "subtotal_excluding_tax": 0,
        "test_clock": cus.get("test_clock"),
        "total": 0,
        "total_discount_amounts": [],
        "total_excluding_tax": 0,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": now if sub is not None else None,
        "_days_until_due": days_until_due,
        "_sub": sub["id"] if sub is not None else None,
    }


def _base_line(
    inv: Obj,
    amount: int,
    quantity: Decimal | int,
    period: tuple[int, int],
    description: str,
    price: Obj | None,
    discountable: bool,
    parent: Obj,
) -> Obj:
    q = Decimal(quantity)
    unit = (Decimal(amount) / q).normalize() if q else Decimal(0)
    return {
        "id": ids.new_id("il"),
        "object": "line_item",
        "amount": amount,
        "currency": inv["currency"],
        "description": description,
        "discount_amounts": [],
        "discountable": discountable,
        "discounts": [],
        "invoice": inv["id"],
        "livemode": False,
        "metadata": {},
        "parent": parent,
        "period": {"end": period[1], "start": period[0]},
        "pretax_credit_amounts": [],
        "pricing": {
            "price_details": {"price": price["id"], "product": price["product"]} if price else None,
            "type": "price_details",
            "unit_amount_decimal": format(unit, "f"),
        },
        "quantity": int(q) if q == q.to_integral_value() else None,
        "quantity_decimal": format(q.normalize(), "f"),
        "subscription": None,
        "subtotal": amount,
        "taxes": [],
    }


def sub_line(
    inv: Obj,
    sub: Obj,
    item: Obj,
    *,
    amount: int,
    quantity: Decimal | int,
    period: tuple[int, int],
    description: str,
    proration: bool = False,
    meter: str | None = None,
) -> Obj:
    """A line for a subscription item's period (in advance) or usage (in arrears)."""
    parent = {
        "invoice_item_details": None,
        "subscription_item_details": {
            "invoice_item": None,
            "proration": proration,
            "proration_details": {"credited_items": None},
            "subscription": sub["id"],
            "subscription_item": item["id"],
        },
        "type": "subscription_item_details",
    }
    line = _base_line(
        inv, amount, quantity, period, description, item["price"], not proration, parent
    )
    line["metadata"] = dict(item["metadata"])
    line["_rates"] = [r["id"] for r in item.get("tax_rates") or []]
    line["_behavior"] = item["price"]["tax_behavior"]
    if meter is not None:
        line["_meter"] = meter
    return line


def item_line(inv: Obj, ii: Obj) -> Obj:
    """The line an invoice item becomes."""
    parent_details = ii.get("parent") or {}
    sub_details = parent_details.get("subscription_details") or {}
    si = ii.get("_si")
    if si is not None:
        parent = {
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": ii["id"],
                "proration": ii["proration"],
                "proration_details": {"credited_items": ii.get("_credited")},
                "subscription": sub_details.get("subscription"),
                "subscription_item": si,
            },
            "type": "subscription_item_details",
        }
    else:
        parent = {
            "invoice_item_details": {
                "invoice_item": ii["id"],
                "proration": ii["proration"],
                "proration_details": {"credited_items": None},
                "subscription": sub_details.get("subscription"),
            },
            "subscription_item_details": None,
            "type": "invoice_item_details",
        }
    price_details = (ii.get("pricing") or {}).get("price_details")
    price = (
        {"id": price_details["price"], "product": price_details["product"]}
        if (price_details and price_details.get("price"))
        else None
    )
    period = (ii["period"]["start"], ii["period"]["end"])
    line = _base_line(
        inv,
        ii["amount"],
        Decimal(ii["quantity_decimal"] or ii["quantity"] or 1),
        period,
        ii["description"] or "",
        price,
        ii["discountable"],
        parent,
    )
    line["metadata"] = dict(ii["metadata"])
    line["_rates"] = [r["id"] for r in ii.get("tax_rates") or []]
    line["_behavior"] = ii.get("_behavior") or "exclusive"
    line["_ii"] = ii["id"]
    return line


def pending_items(
    ctx: Ctx, customer: str, subscription: str | None, *, with_free: bool
) -> list[Obj]:
    """Pending invoice items of a customer, oldest first: those of `subscription`, and with
    `with_free` those tied to no subscription."""
    found, _ = ctx.store.page(
        ctx.account,
        ITEM,
        limit=100,
        where=("customer", customer),
        predicate=lambda o: (
            o["invoice"] is None
            and (_item_sub(o) == subscription or (with_free and _item_sub(o) is None))
        ),
    )
    found.reverse()
    return found


def _item_sub(ii: Obj) -> str | None:
    parent = ii.get("parent") or {}
    sub: str | None = (parent.get("subscription_details") or {}).get("subscription")
    return sub


def attach_items(ctx: Ctx, inv: Obj, items: list[Obj]) -> None:
    for ii in items:
        ii["invoice"] = inv["id"]
        ctx.save(ii)
        ctx.store.add_index(ctx.account, ITEM, "invoice", inv["id"], ii["id"])
        inv["lines"]["data"].append(item_line(inv, ii))


# -- totals -------------------------------------------------------------------------------------


def _discounts(ctx: Ctx, inv: Obj) -> list[tuple[str, Obj]]:
    from ..resources.coupons import coupon_of, discount_applies

    out = []
    for discount_id in inv["discounts"]:
        discount = ctx.find(discount_id, "discount")
        if discount is not None and discount_applies(discount, inv["created"]):
            out.append((discount_id, coupon_of(discount)))
    return out


def recompute(
    ctx: Ctx,
    inv: Obj,
    cus: Obj | None = None,
    extra_discounts: list[tuple[str, Obj]] | None = None,
) -> None:
    """Lines' discounts and taxes, and the invoice's totals (drafts only change).
    `extra_discounts` (id, coupon) stand in for stored discounts (previews)."""
    from ..resources.tax_rates import automatic_rate, rates_of

    lines = inv["lines"]["data"]
    defaults = rates_of(ctx, inv["default_tax_rates"]) if inv["default_tax_rates"] else []
    auto: dict[bool, TaxRate | str | None] = {}
    line_rates: list[list[TaxRate]] = []
    status = None
    for line in lines:
        if inv["automatic_tax"]["enabled"]:
            inclusive = line.get("_behavior") == "inclusive"
            if inclusive not in auto:
                cus = cus or ctx.find(inv["customer"], "customer") or {}
                auto[inclusive] = automatic_rate(ctx, cus.get("address"), inclusive)
            rate = auto[inclusive]
            if isinstance(rate, str):
                status = rate
                line_rates.append([])
            else:
                status = status or "complete"
                line_rates.append([rate] if rate is not None else [])
        elif line.get("_rates"):
            line_rates.append(rates_of(ctx, line["_rates"]))
        else:
            line_rates.append(defaults)
    if inv["automatic_tax"]["enabled"]:
        inv["automatic_tax"]["status"] = status or "complete"
    discounts = extra_discounts if extra_discounts is not None else _discounts(ctx, inv)
    totals = compute_totals(lines, discounts, line_rates)
    inv["subtotal"] = totals.subtotal
    inv["subtotal_excluding_tax"] = totals.subtotal_excluding_tax
    inv["total"] = totals.total
    inv["total_excluding_tax"] = totals.total_excluding_tax
    inv["total_discount_amounts"] = totals.total_discount_amounts
    inv["total_taxes"] = totals.total_taxes
    if inv["status"] == "draft":
        inv["amount_due"] = max(0, totals.total)
        inv["amount_remaining"] = inv["amount_due"]


def _refresh_usage(ctx: Ctx, inv: Obj) -> None:
    """Metered lines count the usage reported until finalization (Stripe's grace period)."""
    from ..resources.meters import usage_quantity
    from ..resources.prices import tiers_of

    for line in inv["lines"]["data"]:
        meter = line.get("_meter")
        if meter is None:
            continue
        qty = usage_quantity(
            ctx, meter, inv["customer"], line["period"]["start"], line["period"]["end"]
        )
        details = line["pricing"]["price_details"]
        price = ctx.find(details["price"], "price") or {}
        amount = price_amount(price, max(qty, Decimal(0)), tiers_of(ctx, price)) if price else 0
        line["amount"] = line["subtotal"] = amount
        line["quantity_decimal"] = format(qty.normalize(), "f")
        line["quantity"] = int(qty) if qty == qty.to_integral_value() else None


# -- finalization -------------------------------------------------------------------------------


def finalize(
    ctx: Ctx,
    inv: Obj,
    *,
    api: bool = False,
    auto_advance: bool | None = None,
    attempt_later: bool = True,
) -> Obj:
    """Finalize a draft. A location automatic tax cannot use fails it: with `api` the
    caller gets the error; otherwise invoice.finalization_failed and it stays a draft.
    `attempt_later`: an auto-advancing charge_automatically invoice gets its first payment
    attempt scheduled (callers that attempt at once, or never, pass False)."""
    from ..resources.customer_billing import add_balance, customer_tax_ids

    cus = ctx.get(inv["customer"], "customer")
    metered = any("_meter" in line for line in inv["lines"]["data"])
    if metered:
        _refresh_usage(ctx, inv)
    if metered or inv["discounts"] or inv["automatic_tax"]["enabled"] or api:
        recompute(ctx, inv, cus)  # what may have moved since the draft was last computed
    if auto_advance is not None:
        inv["auto_advance"] = auto_advance
    if inv["automatic_tax"]["enabled"] and inv["automatic_tax"]["status"] != "complete":
        message = (
            "The customer's location isn't recognized. Add a valid address (at least a "
            "country) to the customer before finalizing with automatic tax."
        )
        inv["last_finalization_error"] = {
            "code": "customer_tax_location_invalid",
            "doc_url": "https://stripe.com/docs/error-codes/customer-tax-location-invalid",
            "message": message,
            "type": "invalid_request_error",
        }
        inv["automatically_finalizes_at"] = None
        timeline.set_wake(ctx, inv, None)
        ctx.save(inv)
        emit(ctx, "invoice.finalization_failed", inv)
        if api:
            raise invalid(message, code="customer_tax_location_invalid")
        return inv
    now = ctx.now
    inv["number"] = f"{cus['invoice_prefix']}-{cus['next_invoice_sequence']:04d}"
    cus["next_invoice_sequence"] += 1
    inv["status"] = "open"
    inv["last_finalization_error"] = None
    inv["automatically_finalizes_at"] = None
    inv["status_transitions"]["finalized_at"] = now
    inv["effective_at"] = now
    inv["webhooks_delivered_at"] = inv["webhooks_delivered_at"] or now
    inv["customer_address"] = cus["address"]
    inv["customer_email"] = cus["email"]
    inv["customer_name"] = cus["name"]
    inv["customer_tax_ids"] = customer_tax_ids(ctx, cus["id"])
    token = ids.new_id("", 40)[1:]
    inv["hosted_invoice_url"] = f"https://invoice.stripe.com/i/{ctx.account}/test_{token}"
    inv["invoice_pdf"] = f"https://pay.stripe.com/invoice/{ctx.account}/test_{token}/pdf"
    if inv["collection_method"] == "send_invoice" and inv["due_date"] is None:
        inv["due_date"] = now + DAY * int(inv.get("_days_until_due") or 30)
    # The customer's balance: a credit pays first, a debit is added (Stripe's order).
    starting = cus["balance"]
    combined = starting + inv["total"]
    amount_due = max(0, combined)
    ending = min(0, combined)
    minimum = _MINIMUM.get(inv["currency"], 50)
    too_small = 0 < amount_due < minimum
    if too_small:  # carried to the next invoice through the balance
        ending, amount_due = amount_due, 0
    inv["starting_balance"] = starting
    inv["ending_balance"] = ending
    inv["amount_due"] = amount_due
    inv["amount_remaining"] = amount_due
    balance_moved = ending != starting
    if balance_moved:
        add_balance(
            ctx,
            cus,
            ending - starting,
            inv["currency"],
            "invoice_too_small" if too_small else "applied_to_invoice",
            invoice=inv["id"],
            emit_customer=False,
        )
    ctx.save(cus)
    if amount_due == 0:
        from .collection import paid

        paid(ctx, inv, None, finalized=True)
        if balance_moved:
            ctx.emit("customer.updated", cus, {"balance": starting})
        return inv
    if inv["collection_method"] == "charge_automatically":
        later = inv["auto_advance"] and attempt_later
        inv["next_payment_attempt"] = now if later else None
    ctx.save(inv)
    emit(ctx, "invoice.finalized", inv)
    if balance_moved:
        ctx.emit("customer.updated", cus, {"balance": starting})
    if inv["collection_method"] == "charge_automatically":
        payment_intent_of(ctx, inv, cus["id"])
        if inv["next_payment_attempt"] is not None:
            timeline.set_wake(ctx, inv, now)
            ctx.save(inv)
    else:
        if inv["auto_advance"]:
            emit(ctx, "invoice.sent", inv)
        timeline.set_wake(ctx, inv, inv["due_date"])
        ctx.save(inv)
    return inv


def payment_intent_of(ctx: Ctx, inv: Obj, customer: str) -> Obj:
    """The invoice's PaymentIntent, created (payment_intent.created) the first time."""
    from ..params import Params
    from ..resources import payment_intents

    pay = ctx.store.first(ctx.account, PAYMENT, "invoice", inv["id"])
    if pay is not None:
        current = ctx.find(pay["payment"]["payment_intent"], "payment_intent")
        if current is not None and current["status"] != "canceled":
            return current
    reason = inv["billing_reason"]
    description = {
        "subscription_create": "Subscription creation",
        "subscription_cycle": "Subscription cycle",
        "subscription_update": "Subscription update",
    }.get(reason, "Payment for Invoice")
    params = Params(
        {
            "amount": str(inv["amount_remaining"]),
            "currency": inv["currency"],
            "customer": customer,
            "description": description,
            "payment_method_types": ["card"],
        }
    )
    pi: Obj = payment_intents.create(ctx, params)
    pay = {
        "id": ctx.new_id("inpay"),
        "object": PAYMENT,
        "amount_paid": None,
        "amount_requested": inv["amount_remaining"],
        "created": ctx.now,
        "currency": inv["currency"],
        "invoice": inv["id"],
        "is_default": True,
        "livemode": False,
        "payment": {"payment_intent": pi["id"], "type": "payment_intent"},
        "status": "open",
        "status_transitions": {"canceled_at": None, "paid_at": None},
        "_pi": pi["id"],
    }
    ctx.insert(pay, ("invoice", "_pi"))
    return pi


# -- payment ------------------------------------------------------------------------------------


# -- void and uncollectible ---------------------------------------------------------------------


def _cancel_payment(ctx: Ctx, inv: Obj) -> None:
    from ..resources import payment_intents

    pay = ctx.store.first(ctx.account, PAYMENT, "invoice", inv["id"])
    if pay is None or pay["status"] != "open":
        return
    pay["status"] = "canceled"
    pay["status_transitions"]["canceled_at"] = ctx.now
    ctx.save(pay)
    pi = ctx.find(pay["payment"]["payment_intent"], "payment_intent")
    if pi is not None and pi["status"] in payment_intents._CANCELABLE:
        payment_intents._cancel(ctx, pi, None)


def void(ctx: Ctx, inv: Obj) -> Obj:
    from ..resources.customer_billing import add_balance

    before = {"status": inv["status"]}
    inv["status"] = "void"
    inv["status_transitions"]["voided_at"] = ctx.now
    inv["auto_advance"] = False
    inv["next_payment_attempt"] = None
    timeline.set_wake(ctx, inv, None)
    ctx.save(inv)
    _cancel_payment(ctx, inv)
    moved = (inv["ending_balance"] or 0) - inv["starting_balance"]
    if moved and inv["ending_balance"] is not None:
        cus = ctx.get(inv["customer"], "customer")
        balance = cus["balance"]
        add_balance(
            ctx,
            cus,
            -moved,
            inv["currency"],
            "unapplied_from_invoice",
            invoice=inv["id"],
            emit_customer=False,
        )
        ctx.save(cus)
        ctx.emit("customer.updated", cus, {"balance": balance})
    emit(ctx, "invoice.voided", inv, before)
    return inv


def mark_uncollectible(ctx: Ctx, inv: Obj) -> Obj:
    inv["status"] = "uncollectible"
    inv["status_transitions"]["marked_uncollectible_at"] = ctx.now
    inv["auto_advance"] = False
    inv["next_payment_attempt"] = None
    timeline.set_wake(ctx, inv, None)
    ctx.save(inv)
    emit(ctx, "invoice.marked_uncollectible", inv)
    return inv
