"""Customers: create, retrieve, update, delete, list.

What billing needs: `payment_method` attaches a PaymentMethod on create (it becomes the
invoice default only through `invoice_settings[default_payment_method]`, which must name a
PaymentMethod of this customer), a credit balance (`balance`, moved through customer balance
transactions), tax ids (`tax_id_data` on create), an address for automatic tax, card
sources (`source`), and `test_clock`, which binds the customer and everything billed to it
to a test clock for good. Deleting a customer cancels its subscriptions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import invalid
from ..params import Params, merge_metadata
from ..router import route
from ..state import Ctx
from ..store import Obj
from .common import address, list_response

__all__ = ["DELETE_HOOKS", "check_default_payment_method", "new_customer", "shipping"]

# Run before a customer is deleted (subscriptions cancel themselves).
DELETE_HOOKS: list[Callable[[Ctx, Obj], None]] = []
_TAX_EXEMPT = frozenset({"exempt", "none", "reverse"})


def shipping(p: Params | None) -> Obj | None:
    if p is None:
        return None
    out = {
        "address": address(p.sub("address", required=True)),
        "name": p.string("name", required=True),
        "phone": p.string("phone"),
    }
    p.done()
    return out


def new_customer(ctx: Ctx, p: Params) -> Obj:
    prefix = p.string("invoice_prefix", max_len=12)
    if prefix is not None and (not prefix.isalnum() or not 3 <= len(prefix) <= 12):
        raise invalid(
            "Invalid invoice_prefix: it must be 3-12 uppercase letters or numbers.",
            param="invoice_prefix",
        )
    settings = p.sub("invoice_settings")
    default_pm = footer = None
    custom_fields: Any = None
    if settings is not None:
        default_pm = settings.string("default_payment_method")
        footer = settings.string("footer", max_len=5000)
        custom_fields = settings.raw("custom_fields") or None
        settings.raw("rendering_options")
        settings.done()
    return {
        "id": ctx.new_id("cus"),
        "object": "customer",
        "address": address(p.sub("address")),
        "balance": 0,
        "created": ctx.now,
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": p.string("description"),
        "discount": None,
        "email": p.string("email", max_len=512),
        "invoice_prefix": (prefix or ctx.new_id("x", 8)[2:]).upper(),
        "invoice_settings": {
            "custom_fields": custom_fields,
            "default_payment_method": default_pm,
            "footer": footer,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": p.metadata() or {},
        "name": p.string("name", max_len=256),
        "next_invoice_sequence": p.integer("next_invoice_sequence", min=1) or 1,
        "phone": p.string("phone", max_len=20),
        "preferred_locales": p.strings("preferred_locales") or [],
        "shipping": shipping(p.sub("shipping")),
        "tax_exempt": p.string("tax_exempt", choices=_TAX_EXEMPT) or "none",
        "test_clock": None,
        "customer_account": None,
    }


def check_default_payment_method(ctx: Ctx, cus: Obj, pm_id: str, param: str) -> None:
    pm = ctx.find(pm_id, "payment_method")
    if pm is None or pm.get("customer") != cus["id"]:
        raise invalid(
            f"No such PaymentMethod: '{pm_id}'; the customer does not have a payment method "
            "with this ID. The payment method must be attached to the customer.",
            param=param,
            code="resource_missing",
        )


@route("POST", "/v1/customers", perm="customers")
def create(ctx: Ctx, p: Params) -> Obj:
    from .customer_billing import add_balance, tax_ids_from
    from .tokens import add_source

    cus = new_customer(ctx, p)
    pm_id = p.string("payment_method")
    source = p.string("source")
    balance = p.integer("balance")
    clock_id = p.string("test_clock")
    tax_ids = p.array("tax_id_data")
    tax = p.sub("tax")
    if tax is not None:
        tax.string("ip_address")
        tax.string("validate_location", choices={"deferred", "immediately"})
        tax.done()
    p.boolean("validate")
    p.done()
    if clock_id is not None:
        ctx.get(clock_id, "test_helpers.test_clock", param="test_clock")
        cus["test_clock"] = clock_id
    wanted_default = cus["invoice_settings"]["default_payment_method"]
    ctx.insert(cus, ("email", "test_clock"))
    created = tax_ids_from(ctx, cus, tax_ids) if tax_ids else []
    attached = None
    if pm_id:
        from .payment_methods import attach_to

        attached = attach_to(ctx, pm_id, cus["id"], param="payment_method")
    if wanted_default:
        if attached is not None and wanted_default == pm_id:
            wanted_default = attached["id"]  # a pm_card_* id minted a new PaymentMethod
        check_default_payment_method(
            ctx, cus, wanted_default, "invoice_settings[default_payment_method]"
        )
        cus["invoice_settings"]["default_payment_method"] = wanted_default
    if source:
        card = add_source(ctx, cus, source, "source", emit_customer=False)
        cus["default_source"] = card["id"]
    if balance:
        add_balance(ctx, cus, balance, None, "initial", emit_customer=False)
    ctx.save(cus)
    ctx.emit("customer.created", cus)
    for tax_id in created:
        ctx.emit("customer.tax_id.created", tax_id)
    return cus


@route("GET", "/v1/customers/{id}", perm="customers")
def retrieve(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    obj = ctx.store.get(id, ctx.account)
    if obj is not None and obj.get("object") == "customer" and obj.get("deleted"):
        return obj
    return ctx.get(id, "customer")


@route("POST", "/v1/customers/{id}", perm="customers")
def update(ctx: Ctx, p: Params, id: str) -> Obj:
    from .customer_billing import add_balance
    from .tokens import add_source

    cus = ctx.get(id, "customer")
    before: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        if value != cus[key]:
            before[key] = cus[key]
            cus[key] = value

    for field in ("description", "email", "name", "phone"):
        if p.has(field):
            put(field, p.string(field, max_len=512))
    if p.has("metadata"):
        put("metadata", merge_metadata(cus["metadata"], p.metadata()))
    if p.has("address"):
        put("address", address(p.sub("address")))
    if p.has("shipping"):
        put("shipping", shipping(p.sub("shipping")))
    if p.has("tax_exempt"):
        put("tax_exempt", p.string("tax_exempt", choices=_TAX_EXEMPT) or "none")
    if p.has("preferred_locales"):
        put("preferred_locales", p.strings("preferred_locales") or [])
    if p.has("invoice_prefix"):
        prefix = p.string("invoice_prefix", max_len=12)
        put("invoice_prefix", (prefix or cus["invoice_prefix"]).upper())
    if p.has("next_invoice_sequence"):
        put("next_invoice_sequence", p.integer("next_invoice_sequence", min=1))
    settings = p.sub("invoice_settings")
    if settings is not None:
        current = dict(cus["invoice_settings"])
        new = dict(current)
        if settings.has("default_payment_method"):
            pm = settings.string("default_payment_method")
            if pm:
                check_default_payment_method(
                    ctx, cus, pm, "invoice_settings[default_payment_method]"
                )
            new["default_payment_method"] = pm
        if settings.has("footer"):
            new["footer"] = settings.string("footer", max_len=5000)
        if settings.has("custom_fields"):
            new["custom_fields"] = settings.raw("custom_fields") or None
        settings.raw("rendering_options")
        settings.done()
        put("invoice_settings", new)
    tax = p.sub("tax")
    if tax is not None:
        tax.string("ip_address")
        tax.string("validate_location", choices={"auto", "deferred", "immediately"})
        tax.done()
    source = p.string("source")
    if source:
        card = add_source(ctx, cus, source, "source", emit_customer=False)
        put("default_source", card["id"])
    if p.has("default_source"):
        src = p.string("default_source")
        if src is not None:
            found = ctx.find(src, "payment_method")
            if found is None or found.get("customer") != id or not src.startswith("card_"):
                raise invalid(
                    f"No such source: '{src}'", param="default_source", code="resource_missing"
                )
        put("default_source", src)
    balance = p.integer("balance")
    p.boolean("validate")
    p.done()
    if balance is not None and balance != cus["balance"]:
        before["balance"] = cus["balance"]
        add_balance(ctx, cus, balance - cus["balance"], None, "adjustment", emit_customer=False)
    ctx.save(cus)
    if before:
        ctx.emit("customer.updated", cus, before)
    return cus


@route("DELETE", "/v1/customers/{id}", perm="customers")
def delete(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    cus = ctx.get(id, "customer")
    for hook in DELETE_HOOKS:
        hook(ctx, cus)
    ctx.store.delete(id)
    ctx.emit("customer.deleted", cus)
    return {"id": id, "object": "customer", "deleted": True}


@route("GET", "/v1/customers", perm="customers")
def list_(ctx: Ctx, p: Params) -> Obj:
    email = p.string("email")
    clock = p.string("test_clock")
    where = ("email", email) if email else (("test_clock", clock) if clock else None)

    def pred(o: Obj) -> bool:
        return (email is None or o.get("email") == email) and (
            clock is None or o.get("test_clock") == clock
        )

    return list_response(ctx, p, "customer", "/v1/customers", where=where, predicate=pred)
