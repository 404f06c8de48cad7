"""Customers: create, retrieve, update, delete, list."""

from __future__ import annotations

from typing import Any

from ..params import Params, merge_metadata
from ..router import route
from ..state import Ctx
from ..store import Obj
from .common import address, list_response


def new_customer(ctx: Ctx, p: Params) -> Obj:
    return {
        "id": ctx.new_id("cus"),
        "object": "customer",
        "address": address(p.sub("address")),
        "balance": p.integer("balance") or 0,
        "created": ctx.now,
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": p.string("description"),
        "discount": None,
        "email": p.string("email", max_len=512),
        "invoice_prefix": ctx.new_id("x", 8)[2:].upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": p.string("payment_method"),
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": p.metadata() or {},
        "name": p.string("name", max_len=256),
        "next_invoice_sequence": 1,
        "phone": p.string("phone", max_len=20),
        "preferred_locales": p.strings("preferred_locales") or [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
        "customer_account": None,
    }


@route("POST", "/v1/customers", perm="customers")
def create(ctx: Ctx, p: Params) -> Obj:
    cus = new_customer(ctx, p)
    p.done()
    pm_id = cus["invoice_settings"]["default_payment_method"]
    ctx.insert(cus, ("email",))
    if pm_id:
        from .payment_methods import attach_to

        attach_to(ctx, pm_id, cus["id"], param="payment_method")
    ctx.emit("customer.created", cus)
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
    cus = ctx.get(id, "customer")
    before: dict[str, Any] = {}
    for field in ("description", "email", "name", "phone"):
        if p.has(field):
            value = p.string(field, max_len=512)
            if value != cus[field]:
                before[field] = cus[field]
                cus[field] = value
    if p.has("metadata"):
        meta = merge_metadata(cus["metadata"], p.metadata())
        if meta != cus["metadata"]:
            before["metadata"] = cus["metadata"]
            cus["metadata"] = meta
    if p.has("address"):
        before["address"] = cus["address"]
        cus["address"] = address(p.sub("address"))
    settings = p.sub("invoice_settings")
    if settings is not None:
        if settings.has("default_payment_method"):
            before["invoice_settings"] = dict(cus["invoice_settings"])
            pm = settings.string("default_payment_method")
            if pm:
                ctx.get(pm, "payment_method", param="invoice_settings[default_payment_method]")
            cus["invoice_settings"]["default_payment_method"] = pm
        settings.done()
    p.done()
    ctx.save(cus)
    if before:
        ctx.emit("customer.updated", cus, before)
    return cus


@route("DELETE", "/v1/customers/{id}", perm="customers")
def delete(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    cus = ctx.get(id, "customer")
    ctx.store.delete(id)
    ctx.emit("customer.deleted", cus)
    return {"id": id, "object": "customer", "deleted": True}


@route("GET", "/v1/customers", perm="customers")
def list_(ctx: Ctx, p: Params) -> Obj:
    email = p.string("email")
    return list_response(
        ctx, p, "customer", "/v1/customers", where=("email", email) if email else None
    )
