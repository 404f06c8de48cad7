"""Products: create (optionally with a default price), retrieve, update, delete, list."""

from __future__ import annotations

from typing import Any

from ..errors import invalid
from ..params import Params, merge_metadata
from ..router import route
from ..state import Ctx
from ..store import Obj
from .common import list_response

__all__ = ["new_product"]

_KIND = "product"


def _package(p: Params | None) -> Obj | None:
    if p is None:
        return None
    out: Obj = {}
    for key in ("height", "length", "weight", "width"):
        raw = p.string(key, required=True) or "0"
        try:
            out[key] = float(raw)
        except ValueError:
            raise invalid(f"Invalid decimal: {raw}", param=f"package_dimensions[{key}]") from None
    p.done()
    return out


def _features(p: Params) -> list[Obj] | None:
    items = p.array("marketing_features")
    if items is None:
        return None
    out = []
    for i, item in enumerate(items):
        sub = Params(item if isinstance(item, dict) else None, f"marketing_features[{i}]")
        out.append({"name": sub.string("name", required=True, max_len=80)})
        sub.done()
    return out


def new_product(ctx: Ctx, p: Params, *, custom_id: bool = True) -> Obj:
    """Build (not store) a product from create / product_data parameters."""
    product_id = p.string("id", max_len=100) if custom_id else None
    if product_id is not None and ctx.store.get(product_id) is not None:
        raise invalid(
            f"Product already exists: {product_id}", param="id", code="resource_already_exists"
        )
    active = p.boolean("active")
    images = p.strings("images") or []
    if len(images) > 8:
        raise invalid("You may pass at most 8 images.", param="images")
    return {
        "id": product_id or ctx.new_id("prod", 14),
        "object": "product",
        "active": True if active is None else active,
        "created": ctx.now,
        "default_price": None,
        "description": p.string("description", max_len=40000),
        "images": images,
        "livemode": False,
        "marketing_features": _features(p) or [],
        "metadata": p.metadata() or {},
        "name": p.string("name", required=True, max_len=250),
        "package_dimensions": _package(p.sub("package_dimensions")),
        "shippable": p.boolean("shippable"),
        "statement_descriptor": p.string("statement_descriptor", max_len=22),
        "tax_code": p.string("tax_code"),
        "type": p.string("type", choices={"good", "service"}) or "service",
        "unit_label": p.string("unit_label", max_len=12),
        "updated": ctx.now,
        "url": p.string("url", max_len=5000),
    }


@route("POST", "/v1/products", perm="products")
def create(ctx: Ctx, p: Params) -> Obj:
    from .prices import insert_price, new_price

    product = new_product(ctx, p)
    data = p.sub("default_price_data")
    p.done()
    price = None
    if data is not None:
        price = new_price(ctx, data, product["id"], inline=False)
        data.done()
        product["default_price"] = price["id"]
    ctx.insert(product)
    ctx.emit("product.created", product)
    if price is not None:
        insert_price(ctx, price)
    return product


@route("GET", "/v1/products/{id}", perm="products")
def retrieve(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    return ctx.get(id, _KIND)


@route("POST", "/v1/products/{id}", perm="products")
def update(ctx: Ctx, p: Params, id: str) -> Obj:
    product = ctx.get(id, _KIND)
    before: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        if value != product[key]:
            before[key] = product[key]
            product[key] = value

    if p.has("name"):
        put("name", p.string("name", required=True, max_len=250))
    for key, max_len in (
        ("description", 40000),
        ("statement_descriptor", 22),
        ("tax_code", 5000),
        ("unit_label", 12),
        ("url", 5000),
    ):
        if p.has(key):
            put(key, p.string(key, max_len=max_len))
    for key in ("active", "shippable"):
        if p.has(key):
            value = p.boolean(key)
            put(key, value if key == "shippable" else bool(value))
    if p.has("images"):
        put("images", p.strings("images") or [])
    if p.has("marketing_features"):
        put("marketing_features", _features(p) or [])
    if p.has("package_dimensions"):
        put("package_dimensions", _package(p.sub("package_dimensions")))
    if p.has("metadata"):
        put("metadata", merge_metadata(product["metadata"], p.metadata()))
    if p.has("default_price"):
        price_id = p.string("default_price")
        if price_id is not None:
            price = ctx.get(price_id, "price", param="default_price")
            if price["product"] != id:
                raise invalid(
                    f"The price `{price_id}` does not belong to product `{id}`.",
                    param="default_price",
                )
        put("default_price", price_id)
    p.done()
    if before:
        product["updated"] = ctx.now
        ctx.save(product)
        ctx.emit("product.updated", product, before)
    return product


@route("DELETE", "/v1/products/{id}", perm="products")
def delete(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    product = ctx.get(id, _KIND)
    prices, _ = ctx.store.page(ctx.account, "price", limit=1, where=("product", id))
    if prices:
        raise invalid(
            "This product cannot be deleted because it has one or more user-created prices."
        )
    ctx.store.delete(id)
    ctx.emit("product.deleted", product)
    return {"id": id, "object": "product", "deleted": True}


@route("GET", "/v1/products", perm="products")
def list_(ctx: Ctx, p: Params) -> Obj:
    active = p.boolean("active")
    shippable = p.boolean("shippable")
    ids = p.strings("ids")
    url = p.string("url")
    type_ = p.string("type", choices={"good", "service"})
    wanted = set(ids) if ids is not None else None

    def pred(o: Obj) -> bool:
        return (
            (active is None or o["active"] == active)
            and (shippable is None or o["shippable"] == shippable)
            and (wanted is None or o["id"] in wanted)
            and (url is None or o["url"] == url)
            and (type_ is None or o.get("type") == type_)
        )

    return list_response(ctx, p, _KIND, "/v1/products", predicate=pred)
