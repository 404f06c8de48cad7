"""Prices and the legacy plans view of recurring prices.

One-time and recurring (day, week, month, year with interval_count), per-unit (with
transform_quantity) or tiered (graduated or volume), metered only through a billing meter
(`recurring[meter]`: legacy metered prices without one are refused, as since Basil),
lookup keys (unique; `transfer_lookup_key` moves one), the active flag. `tiers` is left out
unless expanded, as Stripe does.

Plans: `/v1/plans` creates, reads, updates, deletes and lists recurring prices in the plan
shape; a plan id is a price id wherever Stripe still accepts `plan` (subscription items).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from ..billing.calendar import MAX_COUNT
from ..errors import invalid, missing
from ..expand import includable
from ..params import Params, merge_metadata
from ..router import route
from ..state import Ctx
from ..store import Obj
from .common import list_response, public, public_page

__all__ = ["get_price", "insert_price", "new_price", "plan_view", "price_from_item", "tiers_of"]

_KIND = "price"
_INTERVALS = frozenset({"day", "week", "month", "year"})
_MAX_AMOUNT = 99_999_999


def _decimal(raw: str | None, param: str) -> str | None:
    if raw is None:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise invalid(f"Invalid decimal: {raw}", param=param) from None
    if value < 0 or value > _MAX_AMOUNT or not value.is_finite():
        raise invalid(f"Invalid decimal: {raw}", param=param)
    return format(value.normalize(), "f")


def _amount_pair(p: Params, key: str, prefix: str) -> tuple[int | None, str | None]:
    """(x, x_decimal) from `key` or `key_decimal`; not both."""
    whole = p.integer(key, min=0, max=_MAX_AMOUNT)
    dec = _decimal(p.string(f"{key}_decimal"), f"{prefix}{key}_decimal")
    if whole is not None and dec is not None:
        raise invalid(
            f"You may only specify one of these parameters: {key}, {key}_decimal.",
            param=f"{prefix}{key}_decimal",
        )
    if whole is not None:
        return whole, str(whole)
    if dec is not None:
        d = Decimal(dec)
        return (int(d) if d == d.to_integral_value() else None), dec
    return None, None


def _recurring(ctx: Ctx, p: Params | None, prefix: str = "recurring") -> Obj | None:
    if p is None:
        return None
    interval = p.string("interval", required=True, choices=_INTERVALS)
    assert interval is not None
    count = p.integer("interval_count", min=1) or 1
    if count > MAX_COUNT[interval]:
        raise invalid(
            "The maximum billing period is three years (3 years, 36 months, 156 weeks or 1095 "
            "days).",
            param=f"{prefix}[interval_count]",
        )
    usage_type = p.string("usage_type", choices={"licensed", "metered"}) or "licensed"
    meter = p.string("meter")
    trial = p.integer("trial_period_days", min=0, max=730)
    p.done()
    if usage_type == "metered" and meter is None:
        raise invalid(
            "Metered prices must be backed by a billing meter: pass recurring[meter]. Usage "
            "records (legacy metered billing) are not supported in this API version.",
            param=f"{prefix}[meter]",
        )
    if meter is not None:
        if usage_type != "metered":
            raise invalid(
                "recurring[meter] can only be set when recurring[usage_type] is `metered`.",
                param=f"{prefix}[meter]",
            )
        found = ctx.find(meter, "billing.meter")
        if found is None:
            raise missing("billing.meter", meter, f"{prefix}[meter]")
        if found["status"] != "active":
            raise invalid(
                f"The meter `{meter}` is inactive; reactivate it before attaching it to a price.",
                param=f"{prefix}[meter]",
            )
    return {
        "interval": interval,
        "interval_count": count,
        "meter": meter,
        "trial_period_days": trial,
        "usage_type": usage_type,
    }


def _tiers(p: Params, key: str = "tiers") -> list[Obj] | None:
    items = p.array(key)
    if items is None:
        return None
    out: list[Obj] = []
    last: int | None = 0
    for i, item in enumerate(items):
        prefix = f"{key}[{i}]"
        t = Params(item if isinstance(item, dict) else None, prefix)
        raw_up_to = t.string("up_to", required=True)
        if raw_up_to == "inf":
            up_to = None
        else:
            up_to = t.integer("up_to", required=True, min=1)
        unit, unit_dec = _amount_pair(t, "unit_amount", prefix + "[")
        flat, flat_dec = _amount_pair(t, "flat_amount", prefix + "[")
        t.done()
        if last is None or (up_to is not None and up_to <= last):
            raise invalid(
                "Tiers must be in ascending order of `up_to`, with only the last one `inf`.",
                param=f"{prefix}[up_to]",
            )
        last = up_to
        out.append(
            {
                "flat_amount": flat,
                "flat_amount_decimal": flat_dec,
                "unit_amount": unit,
                "unit_amount_decimal": unit_dec,
                "up_to": up_to,
            }
        )
    if not out or out[-1]["up_to"] is not None:
        raise invalid("The last tier must have `up_to` set to `inf`.", param=key)
    return out


def _transform(p: Params | None, key: str) -> Obj | None:
    if p is None:
        return None
    divide_by = p.integer("divide_by", required=True, min=1)
    rnd = p.string("round", required=True, choices={"up", "down"})
    p.done()
    return {"divide_by": divide_by, "round": rnd}


def _product_for(ctx: Ctx, p: Params, product_id: str | None, allow_data: bool) -> str:
    if product_id is not None:
        return product_id
    from .products import new_product

    pid = p.string("product")
    data = p.sub("product_data") if allow_data else None
    if pid is not None and data is not None:
        raise invalid(
            "You may only specify one of these parameters: product, product_data.",
            param="product_data",
        )
    if pid is not None:
        ctx.get(pid, "product", param="product")
        return pid
    if data is None:
        raise invalid("Missing required param: product.", param="product")
    product = new_product(ctx, data)
    data.done()
    ctx.insert(product)
    ctx.emit("product.created", product)
    return str(product["id"])


def new_price(
    ctx: Ctx,
    p: Params,
    product_id: str | None = None,
    *,
    inline: bool,
    recurring_required: bool = False,
    prefix: str = "",
) -> Obj:
    """Build (not store) a price from create, default_price_data or price_data params.

    `inline` prices (price_data on an item) are created inactive, as Stripe's are.
    """
    currency = p.currency("currency", required=True)
    product = _product_for(ctx, p, product_id, allow_data=not inline)
    recurring = _recurring(
        ctx, p.sub("recurring", required=recurring_required), f"{prefix}recurring"
    )
    scheme = p.string("billing_scheme", choices={"per_unit", "tiered"}) or "per_unit"
    unit, unit_dec = _amount_pair(p, "unit_amount", prefix)
    tiers = _tiers(p) if not inline else None
    tiers_mode = p.string("tiers_mode", choices={"graduated", "volume"}) if not inline else None
    transform = (
        _transform(p.sub("transform_quantity"), "transform_quantity") if not inline else None
    )
    custom = p.sub("custom_unit_amount") if not inline else None
    custom_amount: Obj | None = None
    if custom is not None:
        custom_amount = {
            "maximum": custom.integer("maximum", min=0),
            "minimum": custom.integer("minimum", min=0),
            "preset": custom.integer("preset", min=0),
        }
        custom.boolean("enabled", required=True)
        custom.done()
        if recurring is not None:
            raise invalid(
                "custom_unit_amount can only be used with one-time prices.",
                param="custom_unit_amount",
            )
    if scheme == "tiered":
        if tiers is None or tiers_mode is None:
            raise invalid(
                "Missing required param: tiers."
                if tiers is None
                else "Missing required param: tiers_mode.",
                param="tiers" if tiers is None else "tiers_mode",
            )
        if unit_dec is not None:
            raise invalid(
                "unit_amount cannot be used with billing_scheme=tiered.", param="unit_amount"
            )
        if transform is not None:
            raise invalid(
                "transform_quantity cannot be used with billing_scheme=tiered.",
                param="transform_quantity",
            )
    else:
        if tiers is not None or tiers_mode is not None:
            raise invalid("tiers can only be used with billing_scheme=tiered.", param="tiers")
        if unit_dec is None and custom_amount is None:
            raise invalid(
                f"Missing required param: {prefix}unit_amount.", param=f"{prefix}unit_amount"
            )
    if recurring is None and scheme == "tiered":
        raise invalid("Tiered prices must be recurring.", param="billing_scheme")
    lookup_key = p.string("lookup_key", max_len=200) if not inline else None
    transfer = p.boolean("transfer_lookup_key") if not inline else None
    if lookup_key is not None:
        _claim_lookup_key(ctx, lookup_key, bool(transfer))
    active = p.boolean("active") if not inline else None
    behavior = p.string("tax_behavior", choices={"exclusive", "inclusive", "unspecified"})
    price: Obj = {
        "id": ctx.new_id("price"),
        "object": "price",
        "active": (not inline) if active is None else active,
        "billing_scheme": scheme,
        "created": ctx.now,
        "currency": currency,
        "custom_unit_amount": custom_amount,
        "livemode": False,
        "lookup_key": lookup_key,
        "metadata": (p.metadata() or {}) if not inline else {},
        "nickname": p.string("nickname") if not inline else None,
        "product": product,
        "recurring": recurring,
        "tax_behavior": behavior or "unspecified",
        "tiers_mode": tiers_mode,
        "transform_quantity": transform,
        "type": "recurring" if recurring is not None else "one_time",
        "unit_amount": unit,
        "unit_amount_decimal": unit_dec,
    }
    if tiers is not None:
        price["_tiers"] = tiers
    return price


def _claim_lookup_key(ctx: Ctx, key: str, transfer: bool) -> None:
    found, _ = ctx.store.page(
        ctx.account,
        _KIND,
        limit=1,
        where=("lookup_key", key),
        predicate=lambda o: o.get("lookup_key") == key,
    )
    if not found:
        return
    holder = found[0]
    if not transfer:
        raise invalid(
            f"A price (`{holder['id']}`) already uses that lookup key.", param="lookup_key"
        )
    holder["lookup_key"] = None
    ctx.save(holder)
    ctx.emit("price.updated", public(holder), {"lookup_key": key})


def insert_price(ctx: Ctx, price: Obj) -> Obj:
    ctx.insert(price, ("product", "lookup_key"))
    view = public(price)
    ctx.emit("price.created", view)
    return view


def get_price(ctx: Ctx, price_id: str, param: str = "price") -> Obj:
    price = ctx.store.get(price_id, ctx.account, _KIND) if isinstance(price_id, str) else None
    if price is None:
        raise missing("price", str(price_id), param)
    return price


def tiers_of(ctx: Ctx, price: Obj) -> list[Obj] | None:
    """A price's tiers (only tiered prices have them), from the stored price."""
    if price.get("billing_scheme") != "tiered":
        return None
    if "_tiers" in price:
        tiers: list[Obj] = price["_tiers"]
        return tiers
    stored = ctx.store.get(price["id"], kind=_KIND)
    return (stored or {}).get("_tiers")


@includable("price", "tiers")
def _include_tiers(ctx: Ctx, price: Obj) -> Any:
    return tiers_of(ctx, price)


def plan_view(price: Obj) -> Obj:
    recurring = price["recurring"] or {}
    return {
        "id": price["id"],
        "object": "plan",
        "active": price["active"],
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": price["billing_scheme"],
        "created": price["created"],
        "currency": price["currency"],
        "interval": recurring.get("interval"),
        "interval_count": recurring.get("interval_count"),
        "livemode": False,
        "metadata": price["metadata"],
        "meter": recurring.get("meter"),
        "nickname": price["nickname"],
        "product": price["product"],
        "tiers_mode": price["tiers_mode"],
        "transform_usage": price["transform_quantity"],
        "trial_period_days": recurring.get("trial_period_days"),
        "usage_type": recurring.get("usage_type"),
    }


@includable("plan", "tiers")
def _include_plan_tiers(ctx: Ctx, plan: Obj) -> Any:
    return tiers_of(ctx, {"id": plan["id"], "billing_scheme": plan["billing_scheme"]})


def price_from_item(
    ctx: Ctx, p: Params, prefix: str, *, recurring: bool, allow_plan: bool = True
) -> Obj:
    """The price an item names: `price`, legacy `plan`, or inline `price_data`."""
    price_id = p.string("price")
    plan_id = p.string("plan") if allow_plan else None
    data = p.sub("price_data")
    given = [k for k, v in (("price", price_id), ("plan", plan_id), ("price_data", data)) if v]
    if len(given) > 1:
        raise invalid(
            f"You may only specify one of these parameters: {', '.join(given)}.",
            param=f"{prefix}[{given[-1]}]",
        )
    if data is not None:
        price = new_price(
            ctx, data, inline=True, recurring_required=recurring, prefix=f"{prefix}[price_data]["
        )
        data.done()
        if price["recurring"] is not None:
            price["recurring"]["usage_type"] = "licensed"
        insert_price(ctx, price)
        return price
    pid = price_id or plan_id
    if pid is None:
        raise invalid(f"Missing required param: {prefix}[price].", param=f"{prefix}[price]")
    param = f"{prefix}[{'price' if price_id else 'plan'}]"
    found = ctx.store.get(pid, ctx.account, _KIND)
    if found is None:
        raise missing("plan" if plan_id else "price", pid, param)
    price = found
    if not price["active"] and recurring:
        raise invalid(
            "The price specified is inactive. This field only accepts active prices.", param=param
        )
    if recurring and price["recurring"] is None:
        raise invalid(
            "The price specified is set to `type=one_time` but this field only accepts prices "
            "with `type=recurring`.",
            param=param,
        )
    if not recurring and price["recurring"] is not None:
        raise invalid(
            "The price specified is set to `type=recurring` but this field only accepts prices "
            "with `type=one_time`.",
            param=param,
        )
    return price


# -- API: prices ----------------------------------------------------------------------------


@route("POST", "/v1/prices", perm="prices")
def create(ctx: Ctx, p: Params) -> Obj:
    price = new_price(ctx, p, inline=False)
    p.done()
    return insert_price(ctx, price)


@route("GET", "/v1/prices/{id}", perm="prices")
def retrieve(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    return public(get_price(ctx, id, "id"))


@route("POST", "/v1/prices/{id}", perm="prices")
def update(ctx: Ctx, p: Params, id: str) -> Obj:
    price = get_price(ctx, id, "id")
    before: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        if value != price[key]:
            before[key] = price[key]
            price[key] = value

    if p.has("active"):
        put("active", bool(p.boolean("active")))
    if p.has("nickname"):
        put("nickname", p.string("nickname"))
    if p.has("metadata"):
        put("metadata", merge_metadata(price["metadata"], p.metadata()))
    if p.has("tax_behavior"):
        behavior = p.string("tax_behavior", choices={"exclusive", "inclusive", "unspecified"})
        if price["tax_behavior"] != "unspecified" and behavior != price["tax_behavior"]:
            raise invalid("tax_behavior cannot be changed once it is set.", param="tax_behavior")
        put("tax_behavior", behavior or "unspecified")
    if p.has("lookup_key"):
        key = p.string("lookup_key", max_len=200)
        transfer = bool(p.boolean("transfer_lookup_key"))
        if key is not None and key != price["lookup_key"]:
            _claim_lookup_key(ctx, key, transfer)
            ctx.store.add_index(ctx.account, _KIND, "lookup_key", key, id)
        put("lookup_key", key)
    else:
        p.boolean("transfer_lookup_key")
    p.done()
    if before:
        ctx.save(price)
        ctx.emit("price.updated", public(price), before)
    return public(price)


@route("GET", "/v1/prices", perm="prices")
def list_(ctx: Ctx, p: Params) -> Obj:
    active = p.boolean("active")
    currency = p.currency("currency")
    product = p.string("product")
    type_ = p.string("type", choices={"one_time", "recurring"})
    keys = p.strings("lookup_keys")
    if keys is not None and len(keys) > 10:
        raise invalid("You may pass at most 10 lookup_keys.", param="lookup_keys")
    rec = p.sub("recurring")
    interval = usage = meter = None
    if rec is not None:
        interval = rec.string("interval", choices=_INTERVALS)
        usage = rec.string("usage_type", choices={"licensed", "metered"})
        meter = rec.string("meter")
        rec.done()
    wanted = set(keys) if keys is not None else None

    def pred(o: Obj) -> bool:
        r = o.get("recurring") or {}
        return (
            (active is None or o["active"] == active)
            and (currency is None or o["currency"] == currency)
            and (product is None or o["product"] == product)
            and (type_ is None or o["type"] == type_)
            and (wanted is None or o.get("lookup_key") in wanted)
            and (interval is None or r.get("interval") == interval)
            and (usage is None or r.get("usage_type") == usage)
            and (meter is None or r.get("meter") == meter)
        )

    where = ("product", product) if product else None
    if where is None and keys is not None and len(keys) == 1:
        where = ("lookup_key", keys[0])
    return public_page(list_response(ctx, p, _KIND, "/v1/prices", where=where, predicate=pred))


# -- API: plans (the legacy view of recurring prices) ----------------------------------------


def _get_plan(ctx: Ctx, plan_id: str) -> Obj:
    price = ctx.store.get(plan_id, ctx.account, _KIND)
    if price is None or price["recurring"] is None:
        raise missing("plan", plan_id)
    return price


@route("POST", "/v1/plans", perm="plans")
def create_plan(ctx: Ctx, p: Params) -> Obj:
    plan_id = p.string("id", max_len=200)
    if plan_id is not None and ctx.store.get(plan_id) is not None:
        raise invalid("Plan already exists.", param="id", code="resource_already_exists")
    currency = p.currency("currency", required=True)
    interval = p.string("interval", required=True, choices=_INTERVALS)
    data: dict[str, Any] = {
        "currency": currency,
        "recurring": {
            "interval": interval,
            "interval_count": p.raw("interval_count"),
            "usage_type": p.raw("usage_type"),
            "meter": p.raw("meter"),
            "trial_period_days": p.raw("trial_period_days"),
        },
    }
    data["recurring"] = {k: v for k, v in data["recurring"].items() if v is not None}
    for src, dst in (
        ("amount", "unit_amount"),
        ("amount_decimal", "unit_amount_decimal"),
        ("billing_scheme", "billing_scheme"),
        ("tiers", "tiers"),
        ("tiers_mode", "tiers_mode"),
        ("transform_usage", "transform_quantity"),
        ("nickname", "nickname"),
        ("metadata", "metadata"),
        ("active", "active"),
    ):
        if p.has(src):
            data[dst] = p.raw(src)
    product = p.raw("product")
    if isinstance(product, dict):
        data["product_data"] = product
    elif product is not None:
        data["product"] = product
    p.done()
    price = new_price(ctx, Params(data), inline=False)
    if plan_id is not None:
        price["id"] = plan_id
    view = insert_price(ctx, price)
    plan = plan_view(view)
    ctx.emit("plan.created", plan)
    return plan


@route("GET", "/v1/plans/{id}", perm="plans")
def retrieve_plan(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    return plan_view(_get_plan(ctx, id))


@route("POST", "/v1/plans/{id}", perm="plans")
def update_plan(ctx: Ctx, p: Params, id: str) -> Obj:
    price = _get_plan(ctx, id)
    before_plan = plan_view(price)
    if p.has("active"):
        price["active"] = bool(p.boolean("active"))
    if p.has("nickname"):
        price["nickname"] = p.string("nickname")
    if p.has("metadata"):
        price["metadata"] = merge_metadata(price["metadata"], p.metadata())
    if p.has("trial_period_days"):
        price["recurring"]["trial_period_days"] = p.integer("trial_period_days", min=0, max=730)
    if p.has("product"):
        pid = p.string("product", required=True)
        assert pid is not None
        ctx.get(pid, "product", param="product")
        price["product"] = pid
    p.done()
    plan = plan_view(price)
    before = {k: v for k, v in before_plan.items() if plan[k] != v}
    if before:
        ctx.save(price)
        ctx.emit("plan.updated", plan, before)
    return plan


@route("DELETE", "/v1/plans/{id}", perm="plans")
def delete_plan(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    price = _get_plan(ctx, id)
    ctx.store.delete(id)
    ctx.emit("plan.deleted", plan_view(price))
    return {"id": id, "object": "plan", "deleted": True}


@route("GET", "/v1/plans", perm="plans")
def list_plans(ctx: Ctx, p: Params) -> Obj:
    active = p.boolean("active")
    product = p.string("product")

    def pred(o: Obj) -> bool:
        return (
            o["recurring"] is not None
            and (active is None or o["active"] == active)
            and (product is None or o["product"] == product)
        )

    page = list_response(
        ctx, p, _KIND, "/v1/plans", where=("product", product) if product else None, predicate=pred
    )
    page["data"] = [plan_view(o) for o in page["data"]]
    return page
