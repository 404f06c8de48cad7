"""Coupons, promotion codes, and the discounts that apply them.

A coupon takes a percentage or an amount off, once, for `duration_in_months`
(`repeating`) or forever; `max_redemptions` and `redeem_by` end its validity. A promotion
code is a customer-facing code for a coupon (Stripe's current shape: `promotion.coupon`),
with its own limits and restrictions. Applying either to a subscription or an invoice
creates a `discount` (di_), which is what invoices and their lines refer to.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from ..billing.calendar import shift
from ..errors import invalid, missing
from ..params import Params, merge_metadata
from ..router import route
from ..state import Ctx
from ..store import Obj
from .common import list_response

__all__ = ["coupon_of", "discount_applies", "make_discounts", "read_discounts"]

_COUPON = "coupon"
_PROMO = "promotion_code"
_DISCOUNT = "discount"
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _coupon_valid(ctx: Ctx, coupon: Obj) -> bool:
    if coupon["redeem_by"] is not None and ctx.now > coupon["redeem_by"]:
        return False
    return coupon["max_redemptions"] is None or coupon["times_redeemed"] < coupon["max_redemptions"]


def _view(ctx: Ctx, coupon: Obj) -> Obj:
    coupon["valid"] = _coupon_valid(ctx, coupon)
    return coupon


@route("POST", "/v1/coupons", perm="coupons")
def create(ctx: Ctx, p: Params) -> Obj:
    coupon_id = p.string("id", max_len=200)
    if coupon_id is not None and ctx.store.get(coupon_id) is not None:
        raise invalid("Coupon already exists.", param="id", code="resource_already_exists")
    raw_pct = p.string("percent_off")
    percent: float | None = None
    if raw_pct is not None:
        try:
            pct = Decimal(raw_pct)
        except InvalidOperation:
            raise invalid(f"Invalid decimal: {raw_pct}", param="percent_off") from None
        if not 0 < pct <= 100:
            raise invalid(
                "percent_off must be greater than 0 and at most 100.", param="percent_off"
            )
        percent = float(pct)
    amount_off = p.integer("amount_off", min=1)
    currency = p.currency("currency")
    if (percent is None) == (amount_off is None):
        raise invalid(
            "You must pass exactly one of percent_off or amount_off.", param="percent_off"
        )
    if amount_off is not None and currency is None:
        raise invalid("You must pass currency when passing amount_off.", param="currency")
    duration = p.string("duration", choices={"forever", "once", "repeating"}) or "once"
    months = p.integer("duration_in_months", min=1)
    if duration == "repeating" and months is None:
        raise invalid(
            "You must pass duration_in_months when duration is repeating.",
            param="duration_in_months",
        )
    if duration != "repeating" and months is not None:
        raise invalid(
            "duration_in_months is only valid with duration=repeating.", param="duration_in_months"
        )
    applies = p.sub("applies_to")
    applies_to = None
    if applies is not None:
        applies_to = {"products": applies.strings("products") or []}
        applies.done()
    coupon: Obj = {
        "id": coupon_id or "".join(ctx.em.rng.choice(_ALNUM) for _ in range(8)),
        "object": _COUPON,
        "amount_off": amount_off,
        "applies_to": applies_to,
        "created": ctx.now,
        "currency": currency if amount_off is not None else None,
        "duration": duration,
        "duration_in_months": months,
        "livemode": False,
        "max_redemptions": p.integer("max_redemptions", min=1),
        "metadata": p.metadata() or {},
        "name": p.string("name", max_len=40),
        "percent_off": percent,
        "redeem_by": p.integer("redeem_by", min=0),
        "times_redeemed": 0,
        "valid": True,
    }
    p.done()
    if applies_to is None:
        del coupon["applies_to"]  # only present when set, as Stripe shows it
    ctx.insert(coupon)
    ctx.emit("coupon.created", _view(ctx, coupon))
    return coupon


@route("GET", "/v1/coupons/{id}", perm="coupons")
def retrieve(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    return _view(ctx, ctx.get(id, _COUPON))


@route("POST", "/v1/coupons/{id}", perm="coupons")
def update(ctx: Ctx, p: Params, id: str) -> Obj:
    coupon = ctx.get(id, _COUPON)
    before: dict[str, Any] = {}
    if p.has("name"):
        before["name"] = coupon["name"]
        coupon["name"] = p.string("name", max_len=40)
    if p.has("metadata"):
        before["metadata"] = coupon["metadata"]
        coupon["metadata"] = merge_metadata(coupon["metadata"], p.metadata())
    p.done()
    ctx.save(coupon)
    ctx.emit("coupon.updated", _view(ctx, coupon), before)
    return coupon


@route("DELETE", "/v1/coupons/{id}", perm="coupons")
def delete(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    coupon = ctx.get(id, _COUPON)
    ctx.store.delete(id)
    ctx.emit("coupon.deleted", _view(ctx, coupon))
    return {"id": id, "object": _COUPON, "deleted": True}


@route("GET", "/v1/coupons", perm="coupons")
def list_(ctx: Ctx, p: Params) -> Obj:
    page = list_response(ctx, p, _COUPON, "/v1/coupons")
    page["data"] = [_view(ctx, c) for c in page["data"]]
    return page


# -- promotion codes ------------------------------------------------------------------------


def _promo_active(ctx: Ctx, promo: Obj) -> bool:
    if not promo["active"]:
        return False
    if promo["expires_at"] is not None and ctx.now > promo["expires_at"]:
        return False
    limit = promo["max_redemptions"]
    return limit is None or promo["times_redeemed"] < limit


def _restrictions(p: Params | None) -> Obj:
    out: Obj = {
        "first_time_transaction": False,
        "minimum_amount": None,
        "minimum_amount_currency": None,
    }
    if p is None:
        return out
    out["first_time_transaction"] = bool(p.boolean("first_time_transaction"))
    out["minimum_amount"] = p.integer("minimum_amount", min=1)
    out["minimum_amount_currency"] = p.currency("minimum_amount_currency")
    p.raw("currency_options")
    p.done()
    if out["minimum_amount"] is not None and out["minimum_amount_currency"] is None:
        raise invalid(
            "minimum_amount_currency is required with minimum_amount.",
            param="restrictions[minimum_amount_currency]",
        )
    return out


def _code_taken(ctx: Ctx, code: str) -> bool:
    found, _ = ctx.store.page(
        ctx.account,
        _PROMO,
        limit=1,
        where=("code", code),
        predicate=lambda o: o["code"] == code and o["active"],
    )
    return bool(found)


@route("POST", "/v1/promotion_codes", perm="promotion_codes")
def create_promo(ctx: Ctx, p: Params) -> Obj:
    promotion = p.sub("promotion", required=True)
    assert promotion is not None
    promotion.string("type", required=True, choices={"coupon"})
    coupon_id = promotion.string("coupon", required=True)
    promotion.done()
    assert coupon_id is not None
    ctx.get(coupon_id, _COUPON, param="promotion[coupon]")
    code = p.string("code", max_len=500) or "".join(ctx.em.rng.choice(_ALNUM) for _ in range(8))
    if _code_taken(ctx, code):
        raise invalid(f"An active promotion code with `code: {code}` already exists.", param="code")
    customer = p.string("customer")
    if customer is not None:
        ctx.get(customer, "customer", param="customer")
    active = p.boolean("active")
    promo: Obj = {
        "id": ctx.new_id("promo"),
        "object": _PROMO,
        "active": True if active is None else active,
        "code": code,
        "created": ctx.now,
        "customer": customer,
        "customer_account": None,
        "expires_at": p.integer("expires_at", min=0),
        "livemode": False,
        "max_redemptions": p.integer("max_redemptions", min=1),
        "metadata": p.metadata() or {},
        "promotion": {"coupon": coupon_id, "type": "coupon"},
        "restrictions": _restrictions(p.sub("restrictions")),
        "times_redeemed": 0,
    }
    p.done()
    ctx.insert(promo, ("code",))
    ctx.emit("promotion_code.created", promo)
    return promo


@route("GET", "/v1/promotion_codes/{id}", perm="promotion_codes")
def retrieve_promo(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    return ctx.get(id, _PROMO)


@route("POST", "/v1/promotion_codes/{id}", perm="promotion_codes")
def update_promo(ctx: Ctx, p: Params, id: str) -> Obj:
    promo = ctx.get(id, _PROMO)
    before: dict[str, Any] = {}
    if p.has("active"):
        active = bool(p.boolean("active"))
        if active and not promo["active"] and _code_taken(ctx, promo["code"]):
            raise invalid(
                f"An active promotion code with `code: {promo['code']}` exists.", param="active"
            )
        before["active"] = promo["active"]
        promo["active"] = active
    if p.has("metadata"):
        before["metadata"] = promo["metadata"]
        promo["metadata"] = merge_metadata(promo["metadata"], p.metadata())
    restrictions = p.sub("restrictions")
    if restrictions is not None:
        restrictions.raw("currency_options")
        restrictions.done()
    p.done()
    ctx.save(promo)
    ctx.emit("promotion_code.updated", promo, before)
    return promo


@route("GET", "/v1/promotion_codes", perm="promotion_codes")
def list_promos(ctx: Ctx, p: Params) -> Obj:
    active = p.boolean("active")
    code = p.string("code")
    coupon = p.string("coupon")
    customer = p.string("customer")

    def pred(o: Obj) -> bool:
        return (
            (active is None or o["active"] == active)
            and (code is None or o["code"] == code)
            and (coupon is None or o["promotion"]["coupon"] == coupon)
            and (customer is None or o["customer"] == customer)
        )

    return list_response(
        ctx,
        p,
        _PROMO,
        "/v1/promotion_codes",
        where=("code", code) if code else None,
        predicate=pred,
    )


# -- discounts ------------------------------------------------------------------------------


def read_discounts(p: Params, key: str = "discounts") -> list[tuple[str, str, str]] | None:
    """discounts[i][coupon|promotion_code|discount] as (kind, id, param); None if absent.
    An empty value (`discounts=""`) clears them: []."""
    items = p.array(key)
    if items is None:
        return None
    out = []
    for i, item in enumerate(items):
        sub = Params(item if isinstance(item, dict) else None, f"{p._name(key)}[{i}]")
        given = [(k, sub.string(k)) for k in ("coupon", "promotion_code", "discount")]
        sub.done()
        chosen = [(k, v) for k, v in given if v]
        if len(chosen) != 1:
            raise invalid(
                "Each discount takes exactly one of coupon, promotion_code, discount.",
                param=f"{p._name(key)}[{i}]",
            )
        kind, value = chosen[0]
        assert value is not None
        out.append((kind, value, f"{p._name(key)}[{i}][{kind}]"))
    return out


def make_discounts(
    ctx: Ctx,
    wanted: list[tuple[str, str, str]],
    *,
    customer: str,
    subscription: str | None = None,
    invoice: str | None = None,
    existing: list[str] | None = None,
) -> list[str]:
    """Discount ids for `wanted`: new ones redeem their coupon or promotion code; a
    `discount` entry keeps an existing discount of this subscription or invoice."""
    out: list[str] = []
    for kind, value, param in wanted:
        if kind == "discount":
            if value not in (existing or []):
                raise missing("discount", value, param)
            out.append(value)
            continue
        promo = None
        if kind == "promotion_code":
            promo = ctx.get(value, _PROMO, param=param)
            if not _promo_active(ctx, promo):
                raise invalid(
                    f"This promotion code cannot be redeemed: `{promo['code']}`.", param=param
                )
            if promo["customer"] is not None and promo["customer"] != customer:
                raise invalid(
                    "This promotion code cannot be redeemed by this customer.", param=param
                )
            coupon = ctx.get(promo["promotion"]["coupon"], _COUPON, param=param)
        else:
            coupon = ctx.get(value, _COUPON, param=param)
        if not _coupon_valid(ctx, coupon):
            raise invalid(f"Coupon `{coupon['id']}` is no longer valid.", param=param)
        coupon["times_redeemed"] += 1
        ctx.save(coupon)
        if promo is not None:
            promo["times_redeemed"] += 1
            ctx.save(promo)
        start = ctx.now
        months = coupon["duration_in_months"]
        discount: Obj = {
            "id": ctx.new_id("di"),
            "object": _DISCOUNT,
            "checkout_session": None,
            "customer": customer,
            "customer_account": None,
            "end": shift(start, "month", months) if coupon["duration"] == "repeating" else None,
            "invoice": invoice,
            "invoice_item": None,
            "promotion_code": promo["id"] if promo else None,
            "source": {"coupon": coupon["id"], "type": "coupon"},
            "start": start,
            "subscription": subscription,
            "subscription_item": None,
            "_coupon": {k: v for k, v in coupon.items() if k != "metadata"},
        }
        ctx.insert(discount)
        out.append(discount["id"])
    return out


def coupon_of(discount: Obj) -> Obj:
    """The coupon terms behind a discount, as they were when it was redeemed (a discount
    outlives its coupon's deletion, and a coupon's terms never change)."""
    snapshot: Obj = discount["_coupon"]
    return snapshot


def discount_applies(discount: Obj, at: int) -> bool:
    return discount["end"] is None or at < discount["end"]
