"""Card tokens and customer card sources, for callers older than PaymentMethods.

`POST /v1/tokens` tokenizes a card (`tok_...`, single use); Stripe's test tokens (`tok_visa`,
`tok_mastercard`, `tok_chargeDeclined`, ... every `tok_` + a test card name) work anywhere a
token does, any number of times. A token attached to a customer (`source` on the customer,
or `POST /v1/customers/{id}/sources`) becomes a card with the token's `card.id`: it is kept
as a PaymentMethod with that `card_` id, so PaymentIntents and invoices can charge it, and
answered in the legacy card shape here.
"""

from __future__ import annotations

import copy
from typing import Any

from .. import cards
from ..errors import invalid, missing
from ..expand import includable
from ..params import Params, merge_metadata
from ..router import route
from ..state import Ctx
from ..store import Obj
from . import payment_methods as pms
from .common import list_response

__all__ = ["add_source", "card_view"]

_BRANDS = {
    "visa": "Visa",
    "mastercard": "MasterCard",
    "amex": "American Express",
    "discover": "Discover",
    "jcb": "JCB",
    "diners": "Diners Club",
    "unionpay": "UnionPay",
}
_ADDRESS = (
    ("address_city", "city"),
    ("address_country", "country"),
    ("address_line1", "line1"),
    ("address_line2", "line2"),
    ("address_state", "state"),
    ("address_zip", "postal_code"),
)


def card_view(pm: Obj) -> Obj:
    """A card PaymentMethod in the legacy `card` source shape."""
    card = pm["card"]
    billing = pm.get("billing_details") or {}
    addr = billing.get("address") or {}
    checks = card.get("checks") or {}
    out: Obj = {
        "id": pm["id"],
        "object": "card",
        "address_line1_check": checks.get("address_line1_check"),
        "address_zip_check": checks.get("address_postal_code_check"),
        "brand": _BRANDS.get(card["brand"], "Unknown"),
        "country": card["country"],
        "customer": pm.get("customer"),
        "cvc_check": checks.get("cvc_check"),
        "dynamic_last4": None,
        "exp_month": card["exp_month"],
        "exp_year": card["exp_year"],
        "fingerprint": card["fingerprint"],
        "funding": card["funding"],
        "last4": card["last4"],
        "metadata": pm.get("metadata") or {},
        "name": billing.get("name"),
        "networks": {"preferred": None},
        "regulated_status": card.get("regulated_status"),
        "tokenization_method": None,
    }
    for key, field in _ADDRESS:
        out[key] = addr.get(field)
    return out


def _card_params(ctx: Ctx, card: Params) -> Obj:
    """A PaymentMethod (not stored) with a `card_` id from raw card parameters."""
    name = card.string("name")
    addr = {field: card.string(key) for key, field in _ADDRESS}
    card.currency("currency")
    spec, month, year, cvc_given = pms._validated_card(ctx, card)
    pm = pms.new_payment_method(ctx, spec, exp_month=month, exp_year=year, cvc_given=cvc_given)
    pm["id"] = ctx.new_id("card")
    pm["billing_details"]["name"] = name
    pm["billing_details"]["address"] = addr
    return pm


def _test_token(ctx: Ctx, token_id: str) -> Obj | None:
    number = cards.TOKENS.get(token_id)
    if number is None:
        return None
    pm = pms.new_payment_method(ctx, cards.lookup(number))
    pm["id"] = ctx.new_id("card")
    return _token_object(ctx, token_id, pm)


def _token_object(ctx: Ctx, token_id: str, pm: Obj) -> Obj:
    view = card_view(pm)
    del view["customer"]
    return {
        "id": token_id,
        "object": "token",
        "card": view,
        "client_ip": None,
        "created": ctx.now,
        "livemode": False,
        "type": "card",
        "used": False,
        "_pm": pm,
    }


def _public_token(token: Obj) -> Obj:
    return {k: v for k, v in token.items() if not k.startswith("_")}


@route("POST", "/v1/tokens", perm="tokens")
def create(ctx: Ctx, p: Params) -> Obj:
    card = p.sub("card")
    for other in ("bank_account", "pii", "account", "person", "cvc_update"):
        if p.has(other):
            raise invalid(
                f"The emulator tokenizes cards only ({other} is not supported).", param=other
            )
    p.string("customer")
    p.done()
    if card is None:
        raise invalid("Missing required param: card.", param="card")
    token = _token_object(ctx, ctx.new_id("tok"), _card_params(ctx, card))
    ctx.insert(token)
    return _public_token(token)


@route("GET", "/v1/tokens/{id}", perm="tokens")
def retrieve(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    token = _test_token(ctx, id) or ctx.get(id, "token")
    return _public_token(token)


def _use_token(ctx: Ctx, token_id: str, param: str) -> Obj:
    """The PaymentMethod a token stands for; a real token is spent by it."""
    test = _test_token(ctx, token_id)
    if test is not None:
        pm: Obj = test["_pm"]
        return pm
    token = ctx.find(token_id, "token")
    if token is None:
        raise missing("source", token_id, param)
    if token["used"]:
        raise invalid(
            f"You cannot use a Stripe token more than once: {token_id}.",
            param=param,
            code="token_already_used",
        )
    token["used"] = True
    ctx.save(token)
    return copy.deepcopy(token["_pm"])


def add_source(ctx: Ctx, cus: Obj, source: str, param: str, *, emit_customer: bool) -> Obj:
    """Attach a token to a customer as a card; the first card becomes `default_source`."""
    if not source.startswith("tok_"):
        raise invalid(f"No such token: '{source}'", param=param, code="resource_missing")
    pm = _use_token(ctx, source, param)
    pm["customer"] = cus["id"]
    ctx.insert(pm, ("customer",))
    view = card_view(pm)
    ctx.emit("customer.source.created", view)
    if cus["default_source"] is None and emit_customer:
        before = {"default_source": None}
        cus["default_source"] = pm["id"]
        ctx.save(cus)
        ctx.emit("customer.updated", cus, before)
    return view


def _get_card(ctx: Ctx, customer_id: str, card_id: str) -> Obj:
    ctx.get(customer_id, "customer")
    pm = ctx.find(card_id, "payment_method")
    if pm is None or pm.get("customer") != customer_id or not card_id.startswith("card_"):
        raise missing("source", card_id)
    return pm


@route("POST", "/v1/customers/{id}/sources", perm="customers")
def create_source(ctx: Ctx, p: Params, id: str) -> Obj:
    cus = ctx.get(id, "customer")
    source = p.string("source", required=True)
    metadata = p.metadata()
    p.boolean("validate")
    p.done()
    assert source is not None
    view = add_source(ctx, cus, source, "source", emit_customer=True)
    if metadata:
        pm = _get_card(ctx, id, view["id"])
        pm["metadata"] = metadata
        ctx.save(pm)
        view = card_view(pm)
    return view


@route("GET", "/v1/customers/{id}/sources/{source}", perm="customers")
def retrieve_source(ctx: Ctx, p: Params, id: str, source: str) -> Obj:
    p.done()
    return card_view(_get_card(ctx, id, source))


@route("POST", "/v1/customers/{id}/sources/{source}", perm="customers")
def update_source(ctx: Ctx, p: Params, id: str, source: str) -> Obj:
    pm = _get_card(ctx, id, source)
    before_view = card_view(pm)
    billing = pm["billing_details"]
    if p.has("name"):
        billing["name"] = p.string("name")
    addr = dict(billing.get("address") or {})
    for key, field in _ADDRESS:
        if p.has(key):
            addr[field] = p.string(key)
    billing["address"] = addr
    if p.has("exp_month"):
        pm["card"]["exp_month"] = p.integer("exp_month", min=1, max=12)
    if p.has("exp_year"):
        pm["card"]["exp_year"] = p.integer("exp_year", min=2000)
    if p.has("metadata"):
        pm["metadata"] = merge_metadata(pm.get("metadata") or {}, p.metadata())
    p.done()
    ctx.save(pm)
    view = card_view(pm)
    changed = {k: v for k, v in before_view.items() if view.get(k) != v}
    if changed:
        ctx.emit("customer.source.updated", view, changed)
    return view


@route("DELETE", "/v1/customers/{id}/sources/{source}", perm="customers")
def delete_source(ctx: Ctx, p: Params, id: str, source: str) -> Obj:
    p.done()
    pm = _get_card(ctx, id, source)
    pm["customer"] = None
    ctx.save(pm)
    view = card_view(pm)
    view["customer"] = id
    cus = ctx.get(id, "customer")
    if cus["default_source"] == source:
        rest = [c for c in _cards(ctx, id) if c["id"] != source]
        before = {"default_source": source}
        cus["default_source"] = rest[0]["id"] if rest else None
        ctx.save(cus)
        ctx.emit("customer.updated", cus, before)
    ctx.emit("customer.source.deleted", view)
    return {**view, "deleted": True}


def _cards(ctx: Ctx, customer_id: str) -> list[Obj]:
    found, _ = ctx.store.page(
        ctx.account,
        "payment_method",
        limit=100,
        where=("customer", customer_id),
        predicate=lambda o: o["id"].startswith("card_") and o.get("customer") == customer_id,
    )
    return found


@route("GET", "/v1/customers/{id}/sources", perm="customers")
def list_sources(ctx: Ctx, p: Params, id: str) -> Obj:
    ctx.get(id, "customer")
    kind = p.string("object")
    if kind is not None and kind != "card":
        p.done()
        return {
            "object": "list",
            "data": [],
            "has_more": False,
            "url": f"/v1/customers/{id}/sources",
        }
    page = list_response(
        ctx,
        p,
        "payment_method",
        f"/v1/customers/{id}/sources",
        where=("customer", id),
        predicate=lambda o: o["id"].startswith("card_") and o.get("customer") == id,
    )
    page["data"] = [card_view(pm) for pm in page["data"]]
    return page


@includable("customer", "sources")
def _include_sources(ctx: Ctx, cus: Obj) -> Any:
    data = [card_view(pm) for pm in _cards(ctx, cus["id"])]
    return {
        "object": "list",
        "data": data,
        "has_more": False,
        "url": f"/v1/customers/{cus['id']}/sources",
    }
