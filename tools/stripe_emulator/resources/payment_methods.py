"""PaymentMethods (type card): create, retrieve, update, attach, detach, list.

`pm_card_*` test ids work wherever a PaymentMethod is accepted and mint a fresh object, as
Stripe does. The card number and CVC are validated and dropped: only last4, brand, country,
funding, expiry and a deterministic fingerprint are kept.
"""

from __future__ import annotations

import datetime
from typing import Any

from .. import cards
from ..errors import CardError, invalid
from ..params import Params, merge_metadata
from ..router import route
from ..state import Ctx
from ..store import Obj
from .common import address, list_response

__all__ = [
    "attach_to",
    "create_from_params",
    "is_set_up",
    "mark_set_up",
    "resolve",
    "spec_of",
]

_PM_KIND = "payment_method"
_CONSUMED = "emulator.pm_consumed"  # internal marker kind, never listed or returned
_SET_UP = "emulator.pm_set_up"  # a SetupIntent prepared it for off-session payments


def _card_error(message: str, code: str, param: str) -> CardError:
    return CardError(message, code=code, param=param)


def _today(ctx: Ctx) -> tuple[int, int]:
    d = datetime.datetime.fromtimestamp(ctx.now, datetime.UTC)
    return d.year, d.month


def _billing_details(p: Params | None) -> dict[str, Any]:
    empty_addr = {k: None for k in ("city", "country", "line1", "line2", "postal_code", "state")}
    out: dict[str, Any] = {
        "address": dict(empty_addr),
        "email": None,
        "name": None,
        "phone": None,
        "tax_id": None,
    }
    if p is None:
        return out
    addr = p.sub("address")
    if addr is not None:
        out["address"] = address(addr) or empty_addr
    out["email"] = p.string("email", max_len=800)
    out["name"] = p.string("name", max_len=5000)
    out["phone"] = p.string("phone", max_len=50)
    out["tax_id"] = p.string("tax_id", max_len=50)
    p.done()
    return out


def _card_details(spec: cards.CardSpec, exp_month: int, exp_year: int, cvc_given: bool) -> Obj:
    return {
        "brand": spec.brand,
        "checks": {
            "address_line1_check": None,
            "address_postal_code_check": None,
            "cvc_check": (spec.cvc_check if cvc_given else "unchecked"),
        },
        "country": spec.country,
        "display_brand": spec.brand.replace("diners", "diners_club"),
        "exp_month": exp_month,
        "exp_year": exp_year,
        "fingerprint": cards.fingerprint(spec.number),
        "funding": spec.funding,
        "generated_from": None,
        "last4": spec.last4,
        "networks": {"available": [spec.brand], "preferred": None},
        "three_d_secure_usage": {"supported": spec.brand != "amex"},
        "wallet": None,
        "regulated_status": "unregulated",
    }


def _default_expiry(ctx: Ctx) -> tuple[int, int]:
    year, month = _today(ctx)
    return month, year + 3


def new_payment_method(
    ctx: Ctx,
    spec: cards.CardSpec,
    *,
    exp_month: int | None = None,
    exp_year: int | None = None,
    cvc_given: bool = True,
    billing: dict[str, Any] | None = None,
    metadata: dict[str, str] | None = None,
    allow_redisplay: str = "unspecified",
) -> Obj:
    dm, dy = _default_expiry(ctx)
    return {
        "id": ctx.new_id("pm"),
        "object": "payment_method",
        "allow_redisplay": allow_redisplay,
        "billing_details": billing or _billing_details(None),
        "card": _card_details(spec, exp_month or dm, exp_year or dy, cvc_given),
        "created": ctx.now,
        "customer": None,
        "customer_account": None,
        "livemode": False,
        "metadata": metadata or {},
        "radar_options": {},
        "type": "card",
    }


def _validated_card(ctx: Ctx, card: Params) -> tuple[cards.CardSpec, int, int, bool]:
    """Read card[number|exp_month|exp_year|cvc] or card[token]; Stripe's card errors."""
    token = card.string("token")
    if token is not None:
        card.done()
        number = cards.TOKENS.get(token)
        if number is None:
            raise invalid(f"No such token: '{token}'", param="card[token]", code="token_invalid")
        month, year = _default_expiry(ctx)
        return cards.lookup(number), month, year, True
    raw_number = card.string("number", required=True, max_len=40) or ""
    number = raw_number.replace(" ", "").replace("-", "")
    exp_month = card.integer("exp_month", required=True)
    exp_year = card.integer("exp_year", required=True)
    cvc = card.string("cvc", max_len=10)
    card.done()
    if not number.isdigit() or not 12 <= len(number) <= 19:
        raise _card_error("This card number looks invalid.", "invalid_number", "card[number]")
    if not cards.luhn_ok(number):
        raise _card_error("Your card number is incorrect.", "incorrect_number", "card[number]")
    assert exp_month is not None and exp_year is not None
    if exp_year < 100:
        exp_year += 2000
    if not 1 <= exp_month <= 12:
        raise _card_error(
            "Your card's expiration month is invalid.", "invalid_expiry_month", "card[exp_month]"
        )
    year, month = _today(ctx)
    if exp_year < year or exp_year > year + 50:
        raise _card_error(
            "Your card's expiration year is invalid.", "invalid_expiry_year", "card[exp_year]"
        )
    if exp_year == year and exp_month < month:
        raise _card_error(
            "Your card's expiration month is invalid.", "invalid_expiry_month", "card[exp_month]"
        )
    spec = cards.lookup(number)
    if cvc is not None:
        if not cvc.isdigit() or len(cvc) not in (3, 4):
            raise _card_error("Your card's security code is invalid.", "invalid_cvc", "card[cvc]")
    return spec, exp_month, exp_year, cvc is not None


def create_from_params(ctx: Ctx, p: Params) -> Obj:
    """Build (not store) a card PaymentMethod from create / payment_method_data params."""
    type_ = p.string("type", required=True)
    if type_ != "card":
        raise invalid(
            f"The payment method type `{type_}` is not supported by the emulator; use `card`.",
            param=p._name("type"),
        )
    card = p.sub("card", required=True)
    assert card is not None
    spec, month, year, cvc_given = _validated_card(ctx, card)
    billing = _billing_details(p.sub("billing_details"))
    metadata = p.metadata() or {}
    redisplay = p.string("allow_redisplay", choices={"always", "limited", "unspecified"})
    return new_payment_method(
        ctx,
        spec,
        exp_month=month,
        exp_year=year,
        cvc_given=cvc_given,
        billing=billing,
        metadata=metadata,
        allow_redisplay=redisplay or "unspecified",
    )


def resolve(ctx: Ctx, pm_id: str, param: str = "payment_method") -> Obj:
    """A stored PaymentMethod, or a fresh one for a `pm_card_*` test id."""
    number = cards.PM_CARDS.get(pm_id)
    if number is not None:
        pm = new_payment_method(ctx, cards.lookup(number))
        ctx.insert(pm, ("customer",))
        return pm
    return ctx.get(pm_id, _PM_KIND, "PaymentMethod", param=param)


def spec_of(pm: Obj) -> cards.CardSpec:
    card = pm.get("card") or {}
    return cards.spec_for_fingerprint(
        card.get("fingerprint"), card.get("brand", "visa"), card.get("country", "US")
    )


def mark_consumed(ctx: Ctx, pm: Obj, by: str) -> None:
    """A PaymentMethod used without a customer cannot be used again (Stripe's rule)."""
    if pm.get("customer") is None and ctx.find(_CONSUMED + ":" + pm["id"], _CONSUMED) is None:
        ctx.insert({"id": _CONSUMED + ":" + pm["id"], "object": _CONSUMED, "by": by})


def mark_set_up(ctx: Ctx, pm: Obj) -> None:
    if ctx.find(_SET_UP + ":" + pm["id"], _SET_UP) is None:
        ctx.insert({"id": _SET_UP + ":" + pm["id"], "object": _SET_UP})


def is_set_up(ctx: Ctx, pm: Obj) -> bool:
    return ctx.find(_SET_UP + ":" + pm["id"], _SET_UP) is not None


def check_reusable(ctx: Ctx, pm: Obj, by: str, param: str = "payment_method") -> None:
    marker = ctx.find(_CONSUMED + ":" + pm["id"], _CONSUMED)
    if pm.get("customer") is None and marker is not None and marker.get("by") != by:
        raise invalid(
            "The provided PaymentMethod was previously used with a PaymentIntent without "
            "Customer attachment, shared with a connected account without Customer attachment, "
            "or was detached from a Customer. It may not be used again. To use a PaymentMethod "
            "multiple times, you must attach it to a Customer first.",
            param=param,
        )


def attach_to(ctx: Ctx, pm_id: str, customer_id: str, param: str = "payment_method") -> Obj:
    """Attach a PaymentMethod (or a fresh one for a pm_card_* id) to a customer."""
    ctx.get(customer_id, "customer", param="customer")
    pm = resolve(ctx, pm_id, param)
    if pm["customer"] == customer_id:
        return pm
    if pm["customer"] is not None:
        raise invalid(
            "The payment method you provided has already been attached to a customer.",
            param=param,
        )
    check_reusable(ctx, pm, "", param)
    pm["customer"] = customer_id
    ctx.save(pm)
    ctx.store.add_index(ctx.account, _PM_KIND, "customer", customer_id, pm["id"])
    ctx.emit("payment_method.attached", pm, {"customer": None})
    return pm


@route("POST", "/v1/payment_methods", perm="payment_methods")
def create(ctx: Ctx, p: Params) -> Obj:
    pm = create_from_params(ctx, p)
    p.done()
    ctx.insert(pm, ("customer",))
    return pm


@route("GET", "/v1/payment_methods/{id}", perm="payment_methods")
def retrieve(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    return resolve(ctx, id, "id")


@route("POST", "/v1/payment_methods/{id}", perm="payment_methods")
def update(ctx: Ctx, p: Params, id: str) -> Obj:
    pm = ctx.get(id, _PM_KIND, "PaymentMethod")
    before: dict[str, Any] = {}
    if p.has("metadata"):
        meta = merge_metadata(pm["metadata"], p.metadata())
        if meta != pm["metadata"]:
            before["metadata"] = pm["metadata"]
            pm["metadata"] = meta
    if p.has("billing_details"):
        before["billing_details"] = pm["billing_details"]
        pm["billing_details"] = _billing_details(p.sub("billing_details"))
    if p.has("allow_redisplay"):
        value = p.string("allow_redisplay", choices={"always", "limited", "unspecified"})
        before["allow_redisplay"] = pm["allow_redisplay"]
        pm["allow_redisplay"] = value or "unspecified"
    card = p.sub("card")
    if card is not None:
        month = card.integer("exp_month", min=1, max=12)
        year = card.integer("exp_year")
        card.done()
        if month is not None or year is not None:
            before["card"] = dict(pm["card"])
            cy, _ = _today(ctx)
            if year is not None:
                year = year + 2000 if year < 100 else year
                if year < cy:
                    raise _card_error(
                        "Your card's expiration year is invalid.",
                        "invalid_expiry_year",
                        "card[exp_year]",
                    )
                pm["card"]["exp_year"] = year
            if month is not None:
                pm["card"]["exp_month"] = month
    p.done()
    ctx.save(pm)
    if before:
        ctx.emit("payment_method.updated", pm, before)
    return pm


@route("POST", "/v1/payment_methods/{id}/attach", perm="payment_methods")
def attach(ctx: Ctx, p: Params, id: str) -> Obj:
    customer = p.string("customer", required=True)
    p.done()
    assert customer is not None
    return attach_to(ctx, id, customer, "payment_method")


@route("POST", "/v1/payment_methods/{id}/detach", perm="payment_methods")
def detach(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    pm = ctx.get(id, _PM_KIND, "PaymentMethod")
    previous = pm["customer"]
    if previous is None:
        raise invalid(
            "The payment method you provided is not attached to a customer so detachment is "
            "impossible.",
            code="payment_method_unexpected_state",
        )
    pm["customer"] = None
    ctx.save(pm)
    mark_consumed(ctx, pm, "detached")
    cus = ctx.find(previous, "customer")
    if cus is not None and cus["invoice_settings"].get("default_payment_method") == pm["id"]:
        before = {"invoice_settings": dict(cus["invoice_settings"])}
        cus["invoice_settings"]["default_payment_method"] = None
        ctx.save(cus)
        ctx.emit("customer.updated", cus, before)
    ctx.emit("payment_method.detached", pm, {"customer": previous})
    return pm


def _list(ctx: Ctx, p: Params, customer: str | None, url: str) -> Obj:
    type_ = p.string("type")
    if customer is not None:
        ctx.get(customer, "customer", param="customer")

    def pred(o: Obj) -> bool:
        # an index entry outlives a detach: check the current owner
        return (type_ is None or o.get("type") == type_) and (
            customer is None or o.get("customer") == customer
        )

    return list_response(
        ctx, p, _PM_KIND, url, where=("customer", customer) if customer else None, predicate=pred
    )


@route("GET", "/v1/payment_methods", perm="payment_methods")
def list_(ctx: Ctx, p: Params) -> Obj:
    customer = p.string("customer")
    return _list(ctx, p, customer, "/v1/payment_methods")


@route("GET", "/v1/customers/{id}/payment_methods", perm="payment_methods")
def list_for_customer(ctx: Ctx, p: Params, id: str) -> Obj:
    return _list(ctx, p, id, f"/v1/customers/{id}/payment_methods")
