"""PaymentIntents: create, retrieve, update, confirm, capture, cancel, list.

Status machine (STRIPE-FACTS): requires_payment_method -> requires_confirmation ->
requires_action (3DS) -> requires_capture (manual) | succeeded; a failed attempt returns to
requires_payment_method with `last_payment_error`; canceled.

3DS is completed out of band with the emulator-only call
`POST /_emulator/payment_intents/{id}/three_d_secure` {"outcome": "pass" | "fail"}.
Uncaptured authorisations are canceled (reason `automatic`) after `config.auth_hold_days`.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from .. import cards
from ..cards import CardSpec, Decline
from ..errors import CardError, InvalidRequest, invalid
from ..params import Params, merge_metadata
from ..router import control, route
from ..state import Ctx, Emulator, timer
from ..store import Obj
from . import charges as ch
from . import payment_methods as pms
from .common import address, list_response

if TYPE_CHECKING:
    from ..app import EmulatorApp

__all__ = ["capture_intent", "confirm_intent"]

DAY = 86_400
_KIND = "payment_intent"
_CANCEL_REASONS = frozenset({"abandoned", "duplicate", "fraudulent", "requested_by_customer"})
_CANCELABLE = (
    "requires_payment_method", "requires_capture", "requires_confirmation", "requires_action",
    "processing",
)  # fmt: skip
_UPDATABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
# Stripe's minimum charge amounts (minor units of the presentment currency).
_MINIMUM = {
    "usd": 50, "eur": 50, "gbp": 30, "jpy": 50, "cad": 50, "aud": 50, "chf": 50, "nzd": 50,
    "sgd": 50, "brl": 50, "inr": 50, "dkk": 250, "nok": 300, "sek": 300, "pln": 200,
    "czk": 1500, "huf": 17500, "hkd": 400, "mxn": 1000, "myr": 200, "thb": 1000, "aed": 200,
    "ron": 200, "bgn": 100,
}  # fmt: skip


def _unexpected_state(message: str) -> InvalidRequest:
    return invalid(message, code="payment_intent_unexpected_state")


def _fmt_min(amount: int, currency: str) -> str:
    from ..params import ZERO_DECIMAL

    if currency in ZERO_DECIMAL:
        return f"{amount} {currency}"
    return f"{amount / 100:.2f} {currency}"


# -- parameters ---------------------------------------------------------------------------------


def _shipping(p: Params | None) -> Obj | None:
    if p is None:
        return None
    addr = p.sub("address", required=True)
    out: Obj = {
        "address": address(addr),
        "carrier": p.string("carrier"),
        "name": p.string("name", required=True),
        "phone": p.string("phone"),
        "tracking_number": p.string("tracking_number"),
    }
    p.done()
    return out


def _pm_options(p: Params | None, current: Obj | None = None) -> Obj:
    out: Obj = copy.deepcopy(current) if current else {}
    if p is None:
        return out or _default_pm_options()
    card = p.sub("card")
    if card is not None:
        if not isinstance(out.get("card"), dict):
            out["card"] = _default_pm_options()["card"]
        opts: Obj = out["card"]
        three_ds = card.string("request_three_d_secure", choices={"automatic", "any", "challenge"})
        if three_ds is not None:
            opts["request_three_d_secure"] = three_ds
        capture_method = card.string("capture_method", choices={"manual"}, empty_is_none=True)
        if card.has("capture_method"):
            opts["capture_method"] = capture_method
        sfu = card.string("setup_future_usage", choices={"none", "off_session", "on_session"})
        if sfu is not None:
            opts["setup_future_usage"] = None if sfu == "none" else sfu
        card.done()
    p.done()
    return out or _default_pm_options()


def _default_pm_options() -> Obj:
    return {
        "card": {
            "installments": None,
            "mandate_options": None,
            "network": None,
            "request_three_d_secure": "automatic",
        }
    }


def _transfer_data(ctx: Ctx, p: Params | None, amount: int) -> Obj | None:
    if p is None:
        return None
    dest = p.string("destination", required=True)
    t_amount = p.integer("amount", min=0)
    p.done()
    assert dest is not None
    if ctx.store.get(dest, ctx.account, "account") is None or dest == ctx.account:
        raise invalid(
            f"No such destination: '{dest}'", param="transfer_data[destination]",
            code="resource_missing",
        )  # fmt: skip
    if t_amount is not None and t_amount > amount:
        raise invalid(
            "transfer_data[amount] must be less than or equal to the amount.",
            param="transfer_data[amount]",
        )
    return {"amount": t_amount, "destination": dest}


def _check_connect(ctx: Ctx, pi: Obj) -> None:
    fee = pi["application_fee_amount"]
    obo = pi["on_behalf_of"]
    td = pi["transfer_data"]
    if obo is not None:
        if ctx.store.get(obo, ctx.account, "account") is None:
            raise invalid(f"No such account: '{obo}'", param="on_behalf_of",
                          code="resource_missing")  # fmt: skip
        if td is not None and td["destination"] != obo:
            raise invalid(
                "The `on_behalf_of` parameter must be the same as "
                "`transfer_data[destination]` when both are set.",
                param="on_behalf_of",
            )
    if fee is not None:
        if td is None and obo is None and ctx.is_platform:
            raise invalid(
                "Can only apply an application_fee_amount when the PaymentIntent is attempting "
                "a direct payment (using an OAuth key or Stripe-Account header) or destination "
                "payment (using `transfer_data[destination]`).",
                param="application_fee_amount",
            )
        if fee > pi["amount"]:
            raise invalid(
                "application_fee_amount must be less than or equal to the amount.",
                param="application_fee_amount",
            )


def _check_amount(amount: int, currency: str) -> None:
    minimum = _MINIMUM.get(currency, 50)
    if amount < minimum:
        raise invalid(
            f"Amount must be at least {_fmt_min(minimum, currency)}",
            param="amount",
            code="amount_too_small",
        )


def _read_pm(ctx: Ctx, p: Params, pi: Obj) -> Obj | None:
    """payment_method or payment_method_data -> a stored PaymentMethod (or None)."""
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
    if pm_id:
        pm = pms.resolve(ctx, pm_id, "payment_method")
        if pm["customer"] is not None and pi["customer"] != pm["customer"]:
            if pi["customer"] is None:
                raise invalid(
                    "The provided PaymentMethod belongs to a Customer, but you did not provide "
                    "a Customer. Provide the Customer ID when creating or confirming the "
                    "PaymentIntent.",
                    param="payment_method",
                )
            raise invalid(
                "The provided PaymentMethod was previously attached to a different Customer.",
                param="payment_method",
            )
        pms.check_reusable(ctx, pm, pi["id"])
        return pm
    return None


# -- objects ------------------------------------------------------------------------------------


def _new_intent(ctx: Ctx, p: Params) -> Obj:
    amount = p.amount("amount", required=True)
    currency = p.currency("currency", required=True)
    assert amount is not None and currency is not None
    _check_amount(amount, currency)
    pi_id = ctx.new_id("pi")
    customer = p.string("customer")
    if customer is not None:
        ctx.get(customer, "customer", param="customer")
    types = p.strings("payment_method_types")
    if types is not None and any(t != "card" for t in types):
        bad = next(t for t in types if t != "card")
        raise invalid(
            f"The payment method type provided: {bad} is invalid. The emulator supports card.",
            param="payment_method_types",
        )
    auto = p.sub("automatic_payment_methods")
    auto_pm: Obj | None = None
    if auto is not None:
        enabled = auto.boolean("enabled", required=True)
        redirects = auto.string("allow_redirects", choices={"always", "never"})
        auto.done()
        auto_pm = {"allow_redirects": redirects or "always", "enabled": bool(enabled)}
        if types is not None and enabled:
            raise invalid(
                "You may only specify one of these parameters: automatic_payment_methods, "
                "payment_method_types.",
                param="automatic_payment_methods",
            )
    elif types is None:
        auto_pm = {"allow_redirects": "always", "enabled": True}
    capture_method = (
        p.string("capture_method", choices={"automatic", "automatic_async", "manual"})
        or "automatic_async"
    )
    sfu = p.string("setup_future_usage", choices={"off_session", "on_session"})
    if sfu is not None and customer is None:
        pass  # Stripe accepts it; the PaymentMethod is then just not attached
    pi: Obj = {
        "id": pi_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": p.integer("application_fee_amount", min=0),
        "automatic_payment_methods": auto_pm,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": capture_method,
        "client_secret": f"{pi_id}_secret_{ctx.new_id('s', 25)[2:]}",
        "confirmation_method": p.string("confirmation_method", choices={"automatic", "manual"})
        or "automatic",
        "created": ctx.now,
        "currency": currency,
        "customer": customer,
        "customer_account": None,
        "description": p.string("description", max_len=1000),
        "excluded_payment_method_types": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "managed_payments": {"enabled": False},
        "metadata": p.metadata() or {},
        "next_action": None,
        "on_behalf_of": p.string("on_behalf_of"),
        "payment_method": None,
        "payment_method_configuration_details": (
            {"id": "pmc_emulator_default", "parent": None} if auto_pm else None
        ),
        "payment_method_options": _pm_options(p.sub("payment_method_options")),
        "payment_method_types": types or ["card"],
        "processing": None,
        "receipt_email": p.string("receipt_email", max_len=800),
        "review": None,
        "setup_future_usage": sfu,
        "shipping": _shipping(p.sub("shipping")),
        "source": None,
        "statement_descriptor": p.string("statement_descriptor", max_len=22),
        "statement_descriptor_suffix": p.string("statement_descriptor_suffix", max_len=22),
        "status": "requires_payment_method",
        "transfer_data": _transfer_data(ctx, p.sub("transfer_data"), amount),
        "transfer_group": p.string("transfer_group"),
    }
    _check_connect(ctx, pi)
    return pi


def _set_status(ctx: Ctx, pi: Obj, status: str) -> None:
    pi["status"] = status
    ctx.save(pi)


# -- the payment engine -------------------------------------------------------------------------


def _needs_3ds(pi: Obj, spec: CardSpec) -> bool:
    opts = (pi.get("payment_method_options") or {}).get("card") or {}
    request = opts.get("request_three_d_secure") or "automatic"
    return spec.three_ds or request in ("any", "challenge")


def confirm_intent(
    ctx: Ctx,
    pi: Obj,
    pm: Obj,
    *,
    off_session: bool = False,
    return_url: str | None = None,
    billing: bool = False,
) -> Obj:
    """Run one attempt with `pm`: 3DS, then authorisation. Raises CardError on a decline.

    `billing`: an invoice's automatic attempt, off-session, except that a card asking for
    authentication leaves the PaymentIntent requires_action (the customer authenticates on
    the invoice) instead of declining.
    """
    spec = pms.spec_of(pm)
    pi["payment_method"] = pm["id"]
    pi["last_payment_error"] = None
    pi["next_action"] = None
    if _needs_3ds(pi, spec) and not (
        (off_session or billing) and spec.three_ds_setup_once and pms.is_set_up(ctx, pm)
    ):
        if off_session:
            return _decline(ctx, pi, pm, spec, cards.DECLINES["authentication_required"])
        pi["status"] = "requires_action"
        pi["next_action"] = _next_action(ctx, pi, return_url)
        ctx.save(pi)
        ctx.emit("payment_intent.requires_action", pi)
        return pi
    return _authorize(ctx, pi, pm, spec, three_ds=None)


def _next_action(ctx: Ctx, pi: Obj, return_url: str | None) -> Obj:
    src = ctx.new_id("src")
    url = f"https://hooks.stripe.com/3d_secure_2/hosted?merchant={ctx.account}&payment_intent={pi['id']}&source={src}"
    if return_url:
        return {
            "type": "redirect_to_url",
            "redirect_to_url": {"return_url": return_url, "url": url},
        }
    return {
        "type": "use_stripe_sdk",
        "use_stripe_sdk": {"source": src, "stripe_js": url, "type": "three_d_secure_redirect"},
    }


def _three_ds_details(result: str) -> Obj:
    return {
        "authentication_flow": "challenge",
        "electronic_commerce_indicator": "05" if result == "authenticated" else "07",
        "exemption_indicator": None,
        "result": result,
        "result_reason": None if result == "authenticated" else "rejected",
        "transaction_id": None,
        "version": "2.2.0",
    }


def _authorize(ctx: Ctx, pi: Obj, pm: Obj, spec: CardSpec, three_ds: Obj | None) -> Obj:
    if spec.blocked:
        return _decline(ctx, pi, pm, spec, cards.DECLINES["fraudulent"], blocked=True,
                        three_ds=three_ds)  # fmt: skip
    if spec.decline is not None:
        return _decline(ctx, pi, pm, spec, cards.DECLINES[spec.decline], three_ds=three_ds)
    kind = "manual_review" if spec.risk == "elevated" else "authorized"
    outcome = ch.outcome_for(spec, kind)
    charge = ch.new_charge(ctx, pi, pm, spec, outcome=outcome, decline=None, three_ds=three_ds)
    pi["latest_charge"] = charge["id"]
    if pi["customer"] and pi["setup_future_usage"] and pm["customer"] is None:
        pm = pms.attach_to(ctx, pm["id"], pi["customer"])
    pms.mark_consumed(ctx, pm, pi["id"])
    manual = pi["capture_method"] == "manual" or (
        (pi["payment_method_options"].get("card") or {}).get("capture_method") == "manual"
    )
    if kind == "manual_review":
        from .radar import open_review

        review = open_review(ctx, charge, pi)
        charge["review"] = review["id"]
        pi["review"] = review["id"]
        ctx.save(charge)
    if manual:
        pi["status"] = "requires_capture"
        pi["amount_capturable"] = pi["amount"]
        ctx.save(pi)
        ctx.emit("charge.succeeded", charge)
        ctx.emit("payment_intent.amount_capturable_updated", pi, {"amount_capturable": 0})
        ctx.em.schedule(
            ctx.em.now_f() + ctx.config.auth_hold_days * DAY,
            "payment_intent.auth_expire",
            (ctx.account, pi["id"]),
        )
        return pi
    charge = ch.capture_charge(ctx, charge, pi["amount"], spec)
    pi["status"] = "succeeded"
    pi["amount_received"] = pi["amount"]
    ctx.save(pi)
    ctx.emit("charge.succeeded", charge)
    ctx.emit("payment_intent.succeeded", pi)
    ch.after_capture(ctx, charge, spec)
    return pi


def _decline(
    ctx: Ctx,
    pi: Obj,
    pm: Obj,
    spec: CardSpec,
    decline: Decline,
    *,
    blocked: bool = False,
    three_ds: Obj | None = None,
) -> Obj:
    kind = "blocked" if blocked else "issuer_declined"
    outcome = ch.outcome_for(spec, kind, decline)
    charge = ch.new_charge(ctx, pi, pm, spec, outcome=outcome, decline=decline,
                           three_ds=three_ds)  # fmt: skip
    error: Obj = {
        "advice_code": outcome["advice_code"],
        "charge": charge["id"],
        "code": decline.code,
        "decline_code": decline.decline_code,
        "doc_url": f"https://stripe.com/docs/error-codes/{decline.code.replace('_', '-')}",
        "message": decline.message,
        "network_decline_code": outcome["network_decline_code"],
        "payment_method": pm,
        "type": "card_error",
    }
    pi["status"] = "requires_payment_method"
    pi["payment_method"] = None
    pi["next_action"] = None
    pi["latest_charge"] = charge["id"]
    pi["last_payment_error"] = error
    ctx.save(pi)
    ctx.emit("charge.failed", charge)
    ctx.emit("payment_intent.payment_failed", pi)
    raise CardError(
        decline.message,
        code=decline.code,
        decline_code=decline.decline_code,
        extra={
            "advice_code": outcome["advice_code"],
            "charge": charge["id"],
            "network_decline_code": outcome["network_decline_code"],
            "payment_intent": pi,
            "payment_method": pm,
        },
    )


def capture_intent(
    ctx: Ctx, pi: Obj, amount: int | None, fee: int | None, extra: dict[str, Any] | None = None
) -> Obj:
    if pi["status"] != "requires_capture":
        raise _unexpected_state(
            f"This PaymentIntent could not be captured because it has a status of "
            f"{pi['status']}. Only a PaymentIntent with one of the following statuses may be "
            "captured: requires_capture."
        )
    capturable = pi["amount_capturable"]
    amount = capturable if amount is None else amount
    if amount > capturable:
        raise invalid(
            f"The amount to capture ({amount}) must be less than or equal to the amount "
            f"capturable ({capturable}).",
            param="amount_to_capture",
            code="amount_too_large",
        )
    if fee is not None:
        if pi["transfer_data"] is None and ctx.is_platform:
            raise invalid(
                "Can only apply an application_fee_amount to a destination or direct payment.",
                param="application_fee_amount",
            )
        if fee > amount:
            raise invalid(
                "application_fee_amount must be less than or equal to the captured amount.",
                param="application_fee_amount",
            )
        pi["application_fee_amount"] = fee
    for key, value in (extra or {}).items():
        if value is not None:
            pi[key] = value
    charge = ctx.get(pi["latest_charge"], "charge")
    if fee is not None:
        charge["application_fee_amount"] = fee
    pm = ctx.find(charge["payment_method"], "payment_method")
    spec = pms.spec_of(pm) if pm else cards.lookup("4242424242424242")
    charge = ch.capture_charge(ctx, charge, amount, spec)
    pi["status"] = "succeeded"
    pi["amount_capturable"] = 0
    pi["amount_received"] = amount
    ctx.save(pi)
    ctx.emit("charge.captured", charge)
    ctx.emit("payment_intent.succeeded", pi)
    ch.after_capture(ctx, charge, spec)
    return ctx.get(pi["id"], _KIND)


def _cancel(ctx: Ctx, pi: Obj, reason: str | None) -> Obj:
    if pi["status"] not in _CANCELABLE:
        raise _unexpected_state(
            f"You cannot cancel this PaymentIntent because it has a status of {pi['status']}. "
            "Only a PaymentIntent with one of the following statuses may be canceled: "
            + ", ".join(_CANCELABLE)
            + "."
        )
    was = pi["status"]
    pi["status"] = "canceled"
    pi["canceled_at"] = ctx.now
    pi["cancellation_reason"] = reason
    pi["next_action"] = None
    pi["amount_capturable"] = 0
    ctx.save(pi)
    if was == "requires_capture" and pi["latest_charge"]:
        charge = ctx.get(pi["latest_charge"], "charge")
        before = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
        charge["amount_refunded"] = charge["amount"]
        charge["refunded"] = True
        ctx.save(charge)
        ctx.emit("charge.expired" if reason == "automatic" else "charge.refunded", charge,
                 None if reason == "automatic" else before)  # fmt: skip
    ctx.emit("payment_intent.canceled", pi)
    return pi


@timer("payment_intent.auth_expire")
def _auth_expire(em: Emulator, arg: Any) -> None:
    account, pi_id = arg
    ctx = em.ctx(account)
    pi = ctx.find(pi_id, _KIND)
    if pi is not None and pi["status"] == "requires_capture":
        _cancel(ctx, pi, "automatic")


# -- API ----------------------------------------------------------------------------------------


def _confirm_params(ctx: Ctx, p: Params, pi: Obj) -> tuple[Obj | None, bool, str | None]:
    pm = _read_pm(ctx, p, pi)
    off_session = p.boolean("off_session") or False
    return_url = p.string("return_url", max_len=2048)
    p.boolean("use_stripe_sdk")
    p.boolean("error_on_requires_action")
    p.raw("mandate_data")
    return pm, off_session, return_url


def _confirm_checked(
    ctx: Ctx, pi: Obj, pm: Obj | None, off_session: bool, return_url: str | None
) -> Obj:
    if pi["status"] not in ("requires_payment_method", "requires_confirmation"):
        if pi["status"] in ("succeeded", "requires_capture"):
            msg = (
                "You cannot confirm this PaymentIntent because it has already succeeded after "
                "being previously confirmed."
            )
        else:
            msg = (
                f"You cannot confirm this PaymentIntent because it has a status of {pi['status']}."
            )
        raise _unexpected_state(msg)
    if pm is None and pi["payment_method"]:
        pm = ctx.find(pi["payment_method"], "payment_method")
    if pm is None:
        raise _unexpected_state(
            "You cannot confirm this PaymentIntent because it's missing a payment method. You "
            "can either update the PaymentIntent with a payment method and then confirm it "
            "again, or confirm it again directly with a payment method."
        )
    return confirm_intent(ctx, pi, pm, off_session=off_session, return_url=return_url)


@route("POST", "/v1/payment_intents", perm="payment_intents")
def create(ctx: Ctx, p: Params) -> Obj:
    pi = _new_intent(ctx, p)
    confirm = p.boolean("confirm") or False
    pm, off_session, return_url = _confirm_params(ctx, p, pi)
    p.done()
    if off_session and not confirm:
        raise invalid("off_session can only be used with confirm=true.", param="off_session")
    if pm is not None:
        pi["payment_method"] = pm["id"]
        pi["status"] = "requires_confirmation"
    ctx.insert(pi, ("customer",))
    ctx.emit("payment_intent.created", pi)
    if confirm:
        return _confirm_checked(ctx, pi, pm, off_session, return_url)
    return pi


@route("GET", "/v1/payment_intents/{id}", perm="payment_intents")
def retrieve(ctx: Ctx, p: Params, id: str) -> Obj:
    p.string("client_secret")
    p.done()
    return ctx.get(id, _KIND, "payment_intent")


@route("POST", "/v1/payment_intents/{id}", perm="payment_intents")
def update(ctx: Ctx, p: Params, id: str) -> Obj:
    pi = ctx.get(id, _KIND, "payment_intent")
    before: dict[str, Any] = {}
    restricted = {
        "amount", "currency", "customer", "payment_method", "payment_method_data",
        "payment_method_options", "payment_method_types", "capture_method",
        "application_fee_amount", "transfer_data", "setup_future_usage", "on_behalf_of",
    }  # fmt: skip
    touched = restricted & set(p.keys())
    if touched and pi["status"] not in _UPDATABLE:
        raise _unexpected_state(
            f"You cannot update this PaymentIntent because it has a status of {pi['status']}. "
            "Only a PaymentIntent with one of the following statuses may be updated: "
            + ", ".join(_UPDATABLE)
            + "."
        )

    def put(key: str, value: Any) -> None:
        if value != pi[key]:
            before[key] = pi[key]
            pi[key] = value

    if p.has("amount"):
        put("amount", p.amount("amount", required=True))
    if p.has("currency"):
        put("currency", p.currency("currency", required=True))
    if touched & {"amount", "currency"}:
        _check_amount(pi["amount"], pi["currency"])
    if p.has("customer"):
        customer = p.string("customer")
        if customer is not None:
            ctx.get(customer, "customer", param="customer")
            if customer != pi["customer"]:
                ctx.store.add_index(ctx.account, _KIND, "customer", customer, pi["id"])
        put("customer", customer)
    for key, max_len in (
        ("description", 1000), ("receipt_email", 800), ("statement_descriptor", 22),
        ("statement_descriptor_suffix", 22), ("transfer_group", 5000),
    ):  # fmt: skip
        if p.has(key):
            put(key, p.string(key, max_len=max_len))
    if p.has("capture_method"):
        put(
            "capture_method",
            p.string("capture_method", choices={"automatic", "automatic_async", "manual"})
            or "automatic_async",
        )
    if p.has("setup_future_usage"):
        put("setup_future_usage", p.string("setup_future_usage",
                                           choices={"off_session", "on_session"}))  # fmt: skip
    if p.has("application_fee_amount"):
        put("application_fee_amount", p.integer("application_fee_amount", min=0))
    if p.has("transfer_data"):
        put("transfer_data", _transfer_data(ctx, p.sub("transfer_data"), pi["amount"]))
    if p.has("on_behalf_of"):
        put("on_behalf_of", p.string("on_behalf_of"))
    if p.has("payment_method_options"):
        put("payment_method_options",
            _pm_options(p.sub("payment_method_options"), pi["payment_method_options"]))  # fmt: skip
    if p.has("payment_method_types"):
        types = p.strings("payment_method_types") or ["card"]
        if any(t != "card" for t in types):
            raise invalid("The emulator supports the card payment method type only.",
                          param="payment_method_types")  # fmt: skip
        put("payment_method_types", types)
    if p.has("shipping"):
        put("shipping", _shipping(p.sub("shipping")))
    if p.has("metadata"):
        put("metadata", merge_metadata(pi["metadata"], p.metadata()))
    if p.has("payment_method") or p.has("payment_method_data"):
        pm = _read_pm(ctx, p, pi)
        put("payment_method", pm["id"] if pm else None)
        if pi["status"] in ("requires_payment_method", "requires_confirmation", "requires_action"):
            pi["status"] = "requires_confirmation" if pm else "requires_payment_method"
            pi["next_action"] = None
    p.done()
    _check_connect(ctx, pi)
    ctx.save(pi)
    return pi


@route("POST", "/v1/payment_intents/{id}/confirm", perm="payment_intents")
def confirm(ctx: Ctx, p: Params, id: str) -> Obj:
    pi = ctx.get(id, _KIND, "payment_intent")
    pm, off_session, return_url = _confirm_params(ctx, p, pi)
    p.string("client_secret")
    if p.has("payment_method_options"):
        pi["payment_method_options"] = _pm_options(
            p.sub("payment_method_options"), pi["payment_method_options"]
        )
    if p.has("receipt_email"):
        pi["receipt_email"] = p.string("receipt_email", max_len=800)
    if p.has("shipping"):
        pi["shipping"] = _shipping(p.sub("shipping"))
    if p.has("setup_future_usage"):
        pi["setup_future_usage"] = p.string(
            "setup_future_usage", choices={"off_session", "on_session"}
        )
    if p.has("capture_method"):
        pi["capture_method"] = (
            p.string("capture_method", choices={"automatic", "automatic_async", "manual"})
            or "automatic_async"
        )
    p.done()
    return _confirm_checked(ctx, pi, pm, off_session, return_url)


@route("POST", "/v1/payment_intents/{id}/capture", perm="payment_intents")
def capture(ctx: Ctx, p: Params, id: str) -> Obj:
    pi = ctx.get(id, _KIND, "payment_intent")
    amount = p.amount("amount_to_capture", min=1)
    fee = p.integer("application_fee_amount", min=0)
    extra = {
        "statement_descriptor": p.string("statement_descriptor", max_len=22),
        "statement_descriptor_suffix": p.string("statement_descriptor_suffix", max_len=22),
    }
    if p.has("metadata"):
        pi["metadata"] = merge_metadata(pi["metadata"], p.metadata())
    p.boolean("final_capture")
    p.done()
    return capture_intent(ctx, pi, amount, fee, extra)


@route("POST", "/v1/payment_intents/{id}/cancel", perm="payment_intents")
def cancel(ctx: Ctx, p: Params, id: str) -> Obj:
    pi = ctx.get(id, _KIND, "payment_intent")
    reason = p.string("cancellation_reason", choices=_CANCEL_REASONS)
    p.done()
    return _cancel(ctx, pi, reason)


@route("GET", "/v1/payment_intents", perm="payment_intents")
def list_(ctx: Ctx, p: Params) -> Obj:
    customer = p.string("customer")
    return list_response(
        ctx,
        p,
        _KIND,
        "/v1/payment_intents",
        where=("customer", customer) if customer else None,
        predicate=(lambda o: o.get("customer") == customer) if customer else None,
    )


# -- emulator-only: finish 3D Secure --------------------------------------------------------------


@control("POST", "/_emulator/payment_intents/{id}/three_d_secure")
def three_d_secure(app: EmulatorApp, body: dict[str, Any], id: str) -> Obj:
    outcome = body.get("outcome")
    if outcome not in ("pass", "fail"):
        raise ValueError('outcome must be "pass" or "fail"')
    account = app.em.store.owner(id)
    if account is None or app.em.store.kind_of(id) != _KIND:
        raise invalid(f"No such payment_intent: '{id}'", code="resource_missing")
    ctx = app.em.ctx(account)
    pi = ctx.get(id, _KIND)
    if pi["status"] != "requires_action":
        raise _unexpected_state(
            f"This PaymentIntent has a status of {pi['status']}; 3D Secure can only be "
            "completed while it requires_action."
        )
    pm = ctx.get(pi["payment_method"], "payment_method")
    if outcome == "fail":
        pi["status"] = "requires_payment_method"
        pi["next_action"] = None
        pi["payment_method"] = None
        pi["last_payment_error"] = {
            "code": "payment_intent_authentication_failure",
            "doc_url": "https://stripe.com/docs/error-codes/payment-intent-authentication-failure",
            "message": (
                "The provided PaymentMethod has failed authentication. You can provide "
                "payment_method_data or a new PaymentMethod to attempt to fulfill this "
                "PaymentIntent again."
            ),
            "payment_method": pm,
            "type": "invalid_request_error",
        }
        ctx.save(pi)
        ctx.emit("payment_intent.payment_failed", pi)
        return pi
    pi["next_action"] = None
    try:
        return _authorize(ctx, pi, pm, pms.spec_of(pm), _three_ds_details("authenticated"))
    except CardError:
        return ctx.get(id, _KIND)
