"""SetupIntents and their setup attempts: save a card for later (off-session) payments.

requires_payment_method -> requires_confirmation -> requires_action (3DS) -> succeeded;
a declined card returns to requires_payment_method with `last_setup_error` (402 to the
caller, setup_intent.setup_failed); canceled. A success attaches the PaymentMethod to the
customer, and a card that authenticates once on setup (4000002500003155) then pays
off-session without authentication. Cards Stripe lets attach but declines on charge
(4000000000000341) set up fine.

3DS is completed out of band: `POST /_emulator/setup_intents/{id}/three_d_secure`
{"outcome": "pass" | "fail"}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import cards
from ..errors import CardError, InvalidRequest, invalid, missing
from ..params import Params, merge_metadata
from ..router import control, route
from ..state import Ctx
from ..store import Obj
from . import payment_methods as pms
from .common import list_response

if TYPE_CHECKING:
    from ..app import EmulatorApp

__all__ = ["new_setup_intent"]

_KIND = "setup_intent"
_ATTEMPT = "setup_attempt"
_CANCELABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
_SETS_UP_DESPITE_DECLINE = frozenset({"4000000000000341"})  # declines charges, not setup


def _unexpected(message: str) -> InvalidRequest:
    return invalid(message, code="setup_intent_unexpected_state")


def _options(p: Params | None, current: Obj | None = None) -> Obj:
    out: Obj = dict(
        current
        or {
            "card": {
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        }
    )
    if p is None:
        return out
    card = p.sub("card")
    if card is not None:
        opts = dict(out.get("card") or {})
        value = card.string("request_three_d_secure", choices={"any", "automatic", "challenge"})
        if value is not None:
            opts["request_three_d_secure"] = value
        card.raw("network")
        card.raw("mandate_options")
        card.done()
        out["card"] = opts
    p.done()
    return out


def new_setup_intent(
    ctx: Ctx,
    *,
    customer: str | None,
    usage: str = "off_session",
    description: str | None = None,
    metadata: dict[str, str] | None = None,
    options: Obj | None = None,
) -> Obj:
    si_id = ctx.new_id("seti")
    return {
        "id": si_id,
        "object": _KIND,
        "application": None,
        "automatic_payment_methods": None,
        "cancellation_reason": None,
        "client_secret": f"{si_id}_secret_{ctx.new_id('s', 25)[2:]}",
        "created": ctx.now,
        "customer": customer,
        "customer_account": None,
        "description": description,
        "excluded_payment_method_types": None,
        "flow_directions": None,
        "last_setup_error": None,
        "latest_attempt": None,
        "livemode": False,
        "mandate": None,
        "metadata": metadata or {},
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": options or _options(None),
        "payment_method_types": ["card"],
        "single_use_mandate": None,
        "status": "requires_payment_method",
        "usage": usage,
    }


def _read_pm(ctx: Ctx, p: Params, si: Obj) -> Obj | None:
    pm_id = p.string("payment_method")
    data = p.sub("payment_method_data")
    if pm_id and data is not None:
        raise invalid(
            "You cannot provide both payment_method and payment_method_data.",
            param="payment_method_data",
        )
    if data is not None:
        pm = pms.create_from_params(ctx, data)
        data.done()
        ctx.insert(pm, ("customer",))
        return pm
    if not pm_id:
        return None
    pm = pms.resolve(ctx, pm_id, "payment_method")
    if pm["customer"] is not None and pm["customer"] != si["customer"]:
        raise invalid(
            "The provided PaymentMethod was previously attached to a different Customer.",
            param="payment_method",
        )
    return pm


def _attempt(
    ctx: Ctx, si: Obj, pm: Obj, status: str, error: Obj | None, three_ds: Obj | None = None
) -> Obj:
    card = pm["card"]
    attempt: Obj = {
        "id": ctx.new_id("setatt"),
        "object": _ATTEMPT,
        "application": None,
        "created": ctx.now,
        "customer": si["customer"],
        "customer_account": None,
        "flow_directions": None,
        "livemode": False,
        "on_behalf_of": None,
        "payment_method": pm["id"],
        "payment_method_details": {
            "card": {
                "brand": card["brand"],
                "checks": card["checks"],
                "country": card["country"],
                "exp_month": card["exp_month"],
                "exp_year": card["exp_year"],
                "fingerprint": card["fingerprint"],
                "funding": card["funding"],
                "last4": card["last4"],
                "network": card["brand"],
                "three_d_secure": three_ds,
                "wallet": None,
            },
            "type": "card",
        },
        "setup_error": error,
        "setup_intent": si["id"],
        "status": status,
        "usage": si["usage"],
    }
    ctx.insert(attempt, ("setup_intent",))
    si["latest_attempt"] = attempt["id"]
    return attempt


def _confirm(ctx: Ctx, si: Obj, pm: Obj, return_url: str | None) -> Obj:
    spec = pms.spec_of(pm)
    si["payment_method"] = pm["id"]
    si["last_setup_error"] = None
    request = (si["payment_method_options"].get("card") or {}).get("request_three_d_secure")
    if spec.three_ds or request in ("any", "challenge"):
        si["status"] = "requires_action"
        src = ctx.new_id("src")
        url = f"https://hooks.stripe.com/3d_secure_2/hosted?setup_intent={si['id']}&source={src}"
        si["next_action"] = (
            {"type": "redirect_to_url", "redirect_to_url": {"return_url": return_url, "url": url}}
            if return_url
            else {
                "type": "use_stripe_sdk",
                "use_stripe_sdk": {
                    "source": src,
                    "stripe_js": url,
                    "type": "three_d_secure_redirect",
                },
            }
        )
        _attempt(ctx, si, pm, "requires_action", None)
        ctx.save(si)
        ctx.emit("setup_intent.requires_action", si)
        return si
    return _finish(ctx, si, pm, None)


def _finish(ctx: Ctx, si: Obj, pm: Obj, three_ds: Obj | None) -> Obj:
    spec = pms.spec_of(pm)
    decline_code = "fraudulent" if spec.blocked else spec.decline
    if decline_code is not None and spec.number not in _SETS_UP_DESPITE_DECLINE:
        decline = cards.DECLINES[decline_code]
        error: Obj = {
            "code": decline.code,
            "decline_code": decline.decline_code,
            "doc_url": f"https://stripe.com/docs/error-codes/{decline.code.replace('_', '-')}",
            "message": decline.message,
            "payment_method": pm,
            "type": "card_error",
        }
        _attempt(ctx, si, pm, "failed", error, three_ds)
        si.update(
            status="requires_payment_method",
            payment_method=None,
            next_action=None,
            last_setup_error=error,
        )
        ctx.save(si)
        ctx.emit("setup_intent.setup_failed", si)
        raise CardError(
            decline.message,
            code=decline.code,
            decline_code=decline.decline_code,
            extra={"setup_intent": si, "payment_method": pm},
        )
    _attempt(ctx, si, pm, "succeeded", None, three_ds)
    if si["customer"] and pm["customer"] is None:
        pm = pms.attach_to(ctx, pm["id"], si["customer"])
    if si["usage"] == "off_session":
        pms.mark_set_up(ctx, pm)
    si.update(status="succeeded", next_action=None)
    ctx.save(si)
    ctx.emit("setup_intent.succeeded", si)
    return si


def _confirm_params(ctx: Ctx, p: Params, si: Obj) -> tuple[Obj | None, str | None]:
    pm = _read_pm(ctx, p, si)
    return_url = p.string("return_url", max_len=2048)
    p.raw("mandate_data")
    p.boolean("use_stripe_sdk")
    if p.has("payment_method_options"):
        si["payment_method_options"] = _options(
            p.sub("payment_method_options"), si["payment_method_options"]
        )
    return pm, return_url


def _confirm_checked(ctx: Ctx, si: Obj, pm: Obj | None, return_url: str | None) -> Obj:
    if si["status"] not in ("requires_payment_method", "requires_confirmation"):
        raise _unexpected(
            f"You cannot confirm this SetupIntent because it has a status of {si['status']}."
        )
    if pm is None and si["payment_method"]:
        pm = ctx.find(si["payment_method"], "payment_method")
    if pm is None:
        raise _unexpected(
            "You cannot confirm this SetupIntent because it's missing a payment method. "
            "Update the SetupIntent with a payment method and then confirm it again."
        )
    return _confirm(ctx, si, pm, return_url)


@route("POST", "/v1/setup_intents", perm="setup_intents")
def create(ctx: Ctx, p: Params) -> Obj:
    customer = p.string("customer")
    if customer is not None:
        ctx.get(customer, "customer", param="customer")
    types = p.strings("payment_method_types")
    if types is not None and any(t != "card" for t in types):
        raise invalid(
            "The emulator supports the card payment method type only.", param="payment_method_types"
        )
    auto = p.sub("automatic_payment_methods")
    if auto is not None:
        auto.boolean("enabled", required=True)
        auto.string("allow_redirects", choices={"always", "never"})
        auto.done()
    si = new_setup_intent(
        ctx,
        customer=customer,
        usage=p.string("usage", choices={"off_session", "on_session"}) or "off_session",
        description=p.string("description", max_len=1000),
        metadata=p.metadata(),
        options=_options(p.sub("payment_method_options")),
    )
    if auto is not None:
        si["automatic_payment_methods"] = {"allow_redirects": "always", "enabled": True}
    si["flow_directions"] = p.strings("flow_directions")
    si["on_behalf_of"] = p.string("on_behalf_of")
    p.boolean("attach_to_self")
    confirm = bool(p.boolean("confirm"))
    pm, return_url = _confirm_params(ctx, p, si)
    p.done()
    if pm is not None:
        si["payment_method"] = pm["id"]
        si["status"] = "requires_confirmation"
    ctx.insert(si, ("customer",))
    ctx.emit("setup_intent.created", si)
    if confirm:
        return _confirm_checked(ctx, si, pm, return_url)
    return si


@route("GET", "/v1/setup_intents/{id}", perm="setup_intents")
def retrieve(ctx: Ctx, p: Params, id: str) -> Obj:
    p.string("client_secret")
    p.done()
    return ctx.get(id, _KIND)


@route("POST", "/v1/setup_intents/{id}", perm="setup_intents")
def update(ctx: Ctx, p: Params, id: str) -> Obj:
    si = ctx.get(id, _KIND)
    if si["status"] in ("succeeded", "canceled"):
        raise _unexpected(
            f"You cannot update this SetupIntent because it has a status of {si['status']}."
        )
    if p.has("customer"):
        customer = p.string("customer")
        if customer is not None:
            ctx.get(customer, "customer", param="customer")
            ctx.store.add_index(ctx.account, _KIND, "customer", customer, id)
        si["customer"] = customer
    if p.has("description"):
        si["description"] = p.string("description", max_len=1000)
    if p.has("metadata"):
        si["metadata"] = merge_metadata(si["metadata"], p.metadata())
    if p.has("payment_method_options"):
        si["payment_method_options"] = _options(
            p.sub("payment_method_options"), si["payment_method_options"]
        )
    if p.has("flow_directions"):
        si["flow_directions"] = p.strings("flow_directions")
    if p.has("payment_method") or p.has("payment_method_data"):
        pm = _read_pm(ctx, p, si)
        si["payment_method"] = pm["id"] if pm else None
        si["status"] = "requires_confirmation" if pm else "requires_payment_method"
        si["next_action"] = None
    p.boolean("attach_to_self")
    p.done()
    ctx.save(si)
    return si


@route("POST", "/v1/setup_intents/{id}/confirm", perm="setup_intents")
def confirm(ctx: Ctx, p: Params, id: str) -> Obj:
    si = ctx.get(id, _KIND)
    pm, return_url = _confirm_params(ctx, p, si)
    p.string("client_secret")
    p.done()
    return _confirm_checked(ctx, si, pm, return_url)


@route("POST", "/v1/setup_intents/{id}/cancel", perm="setup_intents")
def cancel(ctx: Ctx, p: Params, id: str) -> Obj:
    si = ctx.get(id, _KIND)
    reason = p.string(
        "cancellation_reason", choices={"abandoned", "duplicate", "requested_by_customer"}
    )
    p.done()
    if si["status"] not in _CANCELABLE:
        raise _unexpected(
            f"You cannot cancel this SetupIntent because it has a status of {si['status']}."
        )
    si.update(status="canceled", cancellation_reason=reason, next_action=None)
    ctx.save(si)
    ctx.emit("setup_intent.canceled", si)
    return si


@route("GET", "/v1/setup_intents", perm="setup_intents")
def list_(ctx: Ctx, p: Params) -> Obj:
    customer = p.string("customer")
    pm = p.string("payment_method")
    p.boolean("attach_to_self")

    def pred(o: Obj) -> bool:
        return (customer is None or o["customer"] == customer) and (
            pm is None or o["payment_method"] == pm
        )

    return list_response(
        ctx,
        p,
        _KIND,
        "/v1/setup_intents",
        where=("customer", customer) if customer else None,
        predicate=pred,
    )


@route("GET", "/v1/setup_attempts", perm="setup_intents")
def list_attempts(ctx: Ctx, p: Params) -> Obj:
    setup_intent = p.string("setup_intent", required=True)
    assert setup_intent is not None
    return list_response(
        ctx, p, _ATTEMPT, "/v1/setup_attempts", where=("setup_intent", setup_intent)
    )


@control("POST", "/_emulator/setup_intents/{id}/three_d_secure")
def three_d_secure(app: EmulatorApp, body: dict[str, Any], id: str) -> Obj:
    outcome = body.get("outcome")
    if outcome not in ("pass", "fail"):
        raise ValueError('outcome must be "pass" or "fail"')
    account = app.em.store.owner(id)
    if account is None or app.em.store.kind_of(id) != _KIND:
        raise missing("setup_intent", id)
    ctx = app.em.ctx(account)
    si = ctx.get(id, _KIND)
    if si["status"] != "requires_action":
        raise _unexpected(
            f"This SetupIntent has a status of {si['status']}; 3D Secure can "
            "only be completed while it requires_action."
        )
    pm = ctx.get(si["payment_method"], "payment_method")
    if outcome == "fail":
        error: Obj = {
            "code": "setup_intent_authentication_failure",
            "doc_url": "https://stripe.com/docs/error-codes/setup-intent-authentication-failure",
            "message": "The latest attempt to set up the payment method has failed because "
            "authentication failed.",
            "payment_method": pm,
            "type": "invalid_request_error",
        }
        _attempt(ctx, si, pm, "failed", error)
        si.update(
            status="requires_payment_method",
            payment_method=None,
            next_action=None,
            last_setup_error=error,
        )
        ctx.save(si)
        ctx.emit("setup_intent.setup_failed", si)
        return si
    details = {
        "authentication_flow": "challenge",
        "electronic_commerce_indicator": "05",
        "result": "authenticated",
        "result_reason": None,
        "transaction_id": None,
        "version": "2.2.0",
    }
    try:
        return _finish(ctx, si, pm, details)
    except CardError:
        return ctx.get(id, _KIND)
