"""Charges: the attempts PaymentIntents make, their capture and balance transactions.

PaymentIntents create charges (`new_charge`), capture them (`capture_charge`, which posts the
`charge` balance transaction) and run what follows a successful capture (`after_capture`:
destination transfer, dispute and early fraud warning test cards). The API offers retrieve,
update, list and `POST /v1/charges/{id}/capture`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from .. import cards, money
from ..cards import CardSpec, Decline
from ..errors import invalid
from ..params import Params, merge_metadata
from ..router import route
from ..state import Ctx
from ..store import Obj
from .common import list_response

__all__ = [
    "after_capture",
    "call_external",
    "capture_charge",
    "merge_back",
    "new_charge",
    "outcome_for",
]

_SELLER = {
    "authorized": "Payment complete.",
    "manual_review": (
        "Stripe evaluated this payment as having elevated risk, and placed it in your manual "
        "review queue."
    ),
    "blocked": "Stripe blocked this payment as too risky.",
}


def _risk_score(spec: CardSpec) -> int:
    if spec.risk == "highest":
        return 92
    if spec.risk == "elevated":
        return 72
    fp = cards.fingerprint(spec.number)
    return 5 + sum(map(ord, fp)) % 55


def outcome_for(spec: CardSpec, kind: str, decline: Decline | None = None) -> Obj:
    """Stripe's `charge.outcome` for an authorised, reviewed, blocked or declined attempt."""
    out: Obj = {
        "advice_code": None,
        "network_advice_code": None,
        "network_decline_code": None,
        "network_status": "approved_by_network",
        "reason": None,
        "risk_level": spec.risk,
        "risk_score": _risk_score(spec),
        "rule": None,
        "seller_message": _SELLER.get(kind),
        "type": kind,
    }
    if kind == "manual_review":
        out["reason"] = "elevated_risk_level"
    elif kind == "blocked":
        out["network_status"] = "not_sent_to_network"
        out["reason"] = "highest_risk_level"
        out["advice_code"] = "do_not_try_again"
    elif kind == "issuer_declined":
        assert decline is not None
        out["network_status"] = "declined_by_network"
        out["reason"] = decline.decline_code
        out["advice_code"] = decline.advice_code
        out["network_decline_code"] = decline.network_decline_code
        out["network_advice_code"] = "03" if decline.advice_code == "do_not_try_again" else None
        out["seller_message"] = (
            "The bank did not return any further details with this decline."
            if decline.decline_code == "generic_decline"
            else f"The bank returned the decline code `{decline.decline_code}`."
        )
    return out


def _card_details(
    pm: Obj, spec: CardSpec, amount: int, authorized: bool, three_ds: Obj | None
) -> Obj:
    card = pm["card"]
    billing = pm.get("billing_details") or {}
    addr = billing.get("address") or {}
    return {
        "amount_authorized": amount if authorized else None,
        "authorization_code": f"{(sum(map(ord, card['fingerprint'])) * 7919) % 1000000:06d}"
        if authorized
        else None,
        "brand": card["brand"],
        "checks": {
            "address_line1_check": spec.address_line1_check if addr.get("line1") else None,
            "address_postal_code_check": (
                spec.address_postal_code_check if addr.get("postal_code") else None
            ),
            "cvc_check": card["checks"]["cvc_check"],
        },
        "country": card["country"],
        "exp_month": card["exp_month"],
        "exp_year": card["exp_year"],
        "extended_authorization": {"status": "disabled"},
        "fingerprint": card["fingerprint"],
        "funding": card["funding"],
        "incremental_authorization": {"status": "unavailable"},
        "installments": None,
        "last4": card["last4"],
        "mandate": None,
        "multicapture": {"status": "unavailable"},
        "network": card["brand"],
        "network_token": {"used": False},
        "network_transaction_id": "".join(
            str((ord(c) * 31) % 10) for c in card["fingerprint"][:15]
        ),
        "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
        "regulated_status": card.get("regulated_status", "unregulated"),
        "three_d_secure": three_ds,
        "transaction_link_id": None,
        "wallet": None,
    }


def new_charge(
    ctx: Ctx,
    pi: Obj,
    pm: Obj,
    spec: CardSpec,
    *,
    outcome: Obj,
    decline: Decline | None,
    three_ds: Obj | None,
) -> Obj:
    """Build and store the charge of one PaymentIntent attempt (not yet captured)."""
    ok = decline is None
    failure_code = decline.code if decline is not None else None
    failure_message = decline.message if decline is not None else None
    ch_id = ctx.new_id("ch")
    charge: Obj = {
        "id": ch_id,
        "object": "charge",
        "amount": pi["amount"],
        "amount_captured": 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": pi["application_fee_amount"],
        "balance_transaction": None,
        "billing_details": copy.deepcopy(pm["billing_details"]),
        "calculated_statement_descriptor": (
            pi.get("statement_descriptor") or "PAYPLANE"
        ).upper()[:22],
        "captured": False,
        "created": ctx.now,
        "currency": pi["currency"],
        "customer": pi["customer"],
        "description": pi["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": failure_code,
        "failure_message": failure_message,
        "fraud_details": {},
        "livemode": False,
        "metadata": dict(pi["metadata"]),
        "on_behalf_of": pi["on_behalf_of"],
        "outcome": outcome,
        "paid": ok,
        "payment_intent": pi["id"],
        "payment_method": pm["id"],
        "payment_method_details": {
            "card": _card_details(pm, spec, pi["amount"], ok, three_ds),
            "type": "card",
        },
        "radar_options": {},
        "receipt_email": pi["receipt_email"],
        "receipt_number": None,
        "receipt_url": f"https://pay.stripe.com/receipts/payment/{ctx.new_id('rcpt', 40)[5:]}",
        "refunded": False,
        "refunds": {"object": "list", "data": [], "has_more": False, "total_count": 0,
                    "url": f"/v1/charges/{ch_id}/refunds"},
        "review": None,
        "shipping": copy.deepcopy(pi["shipping"]),
        "source": None,
        "source_transfer": None,
        "statement_descriptor": pi["statement_descriptor"],
        "statement_descriptor_suffix": pi["statement_descriptor_suffix"],
        "status": "succeeded" if ok else "failed",
        "transfer": None,
        "transfer_data": copy.deepcopy(pi["transfer_data"]),
        "transfer_group": pi["transfer_group"],
    }  # fmt: skip
    ctx.insert(charge, ("customer", "payment_intent"))
    return charge


def capture_charge(ctx: Ctx, charge: Obj, amount: int, spec: CardSpec) -> Obj:
    """Capture `amount` of an authorised charge: post its balance transaction.

    The uncaptured remainder is released (it shows in `amount_refunded`, with no balance
    transaction), as Stripe does.
    """
    card_country = charge["payment_method_details"]["card"]["country"]
    amounts = money.charge_amounts(ctx.em, ctx.account, amount, charge["currency"], card_country)
    bt = money.post_balance_transaction(
        ctx,
        amount=amounts.gross,
        currency=amounts.currency,
        type="charge",
        reporting_category="charge",
        source=charge["id"],
        fee_details=[money.fee_detail(amounts.fee, amounts.currency)],
        exchange_rate=amounts.rate,
        description=charge["description"],
        available_on=money.charge_available_on(
            ctx.em, immediate=spec.immediate, account=ctx.account
        ),
    )
    charge["captured"] = True
    charge["amount_captured"] = amount
    charge["balance_transaction"] = bt["id"]
    released = charge["amount"] - amount
    if released:
        charge["amount_refunded"] = released
    ctx.save(charge)
    return charge


def merge_back(ctx: Ctx, obj: Obj, snapshot: Obj) -> Obj:
    """Save `obj` after another module's hook: keep its in-place and its stored changes."""
    stored = ctx.store.get(obj["id"]) or {}
    merged = dict(stored)
    for key, value in obj.items():
        if key not in stored or value != snapshot.get(key):
            merged[key] = value
    ctx.save(merged)
    return merged


def call_external(ctx: Ctx, obj: Obj, fn: Callable[[Obj], None]) -> Obj:
    """Run another module's hook on `obj` (which may change it in place or save it)."""
    snapshot = copy.deepcopy(obj)
    fn(obj)
    return merge_back(ctx, obj, snapshot)


def after_capture(ctx: Ctx, charge: Obj, spec: CardSpec) -> Obj:
    """What a captured charge sets off: destination transfer, dispute, early fraud warning."""
    transfer_data = charge.get("transfer_data")
    if transfer_data and transfer_data.get("destination"):
        from .transfers import (  # type: ignore[import-untyped, unused-ignore]  # lazy: another module
            destination_charge,
        )

        dest = transfer_data["destination"]
        amount = transfer_data.get("amount")
        fee = charge.get("application_fee_amount")
        charge = call_external(ctx, charge, lambda c: destination_charge(ctx, c, dest, amount, fee))
    if spec.dispute:
        from .disputes import open_dispute

        charge = open_dispute(ctx, charge, spec.dispute)
    if spec.early_fraud_warning:
        from .radar import create_early_fraud_warning

        create_early_fraud_warning(ctx, charge)
    return charge


def settlement_of(ctx: Ctx, charge: Obj) -> tuple[str, int]:
    """The settlement currency of a captured charge and its captured amount at today's rate."""
    bt = ctx.store.get(charge["balance_transaction"] or "", kind="balance_transaction")
    settle = (
        bt["currency"] if bt else money.settlement_currency(ctx.em, ctx.account, charge["currency"])
    )
    return settle, charge["amount_captured"]


# -- API ----------------------------------------------------------------------------------------


@route("GET", "/v1/charges/{id}", perm="charges")
def retrieve(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    return ctx.get(id, "charge")


@route("POST", "/v1/charges/{id}", perm="charges")
def update(ctx: Ctx, p: Params, id: str) -> Obj:
    charge = ctx.get(id, "charge")
    before: dict[str, Any] = {}
    for field in ("description", "receipt_email", "transfer_group"):
        if p.has(field):
            value = p.string(field, max_len=800 if field == "receipt_email" else 5000)
            if field == "transfer_group" and charge["transfer_group"] and value:
                raise invalid(
                    "The transfer_group of a charge cannot be changed once set.",
                    param="transfer_group",
                )
            if value != charge[field]:
                before[field] = charge[field]
                charge[field] = value
    if p.has("metadata"):
        meta = merge_metadata(charge["metadata"], p.metadata())
        if meta != charge["metadata"]:
            before["metadata"] = charge["metadata"]
            charge["metadata"] = meta
    fraud = p.sub("fraud_details")
    if fraud is not None:
        report = fraud.string("user_report", choices={"fraudulent", "safe"}, empty_is_none=False)
        fraud.done()
        before["fraud_details"] = dict(charge["fraud_details"])
        details = dict(charge["fraud_details"])
        if report:
            details["user_report"] = report
        else:
            details.pop("user_report", None)
        charge["fraud_details"] = details
    if p.has("shipping"):
        ship = p.sub("shipping")
        before["shipping"] = charge["shipping"]
        charge["shipping"] = _shipping(ship)
    p.done()
    ctx.save(charge)
    if before:
        ctx.emit("charge.updated", charge, before)
    return charge


def _shipping(p: Params | None) -> Obj | None:
    from .common import address

    if p is None:
        return None
    out: Obj = {
        "address": address(p.sub("address", required=True)),
        "carrier": p.string("carrier"),
        "name": p.string("name", required=True),
        "phone": p.string("phone"),
        "tracking_number": p.string("tracking_number"),
    }
    p.done()
    return out


@route("POST", "/v1/charges/{id}/capture", perm="charges")
def capture(ctx: Ctx, p: Params, id: str) -> Obj:
    charge = ctx.get(id, "charge")
    amount = p.amount("amount")
    fee = p.integer("application_fee_amount", min=0)
    receipt_email = p.string("receipt_email")
    descriptor = p.string("statement_descriptor", max_len=22)
    suffix = p.string("statement_descriptor_suffix", max_len=22)
    p.done()
    if charge["captured"]:
        raise invalid(f"Charge {id} has already been captured.", code="charge_already_captured")
    if not charge["payment_intent"]:
        raise invalid("This charge cannot be captured.", code="charge_not_capturable")
    from .payment_intents import capture_intent

    pi = ctx.get(charge["payment_intent"], "payment_intent")
    capture_intent(
        ctx, pi, amount, fee,
        {"receipt_email": receipt_email, "statement_descriptor": descriptor,
         "statement_descriptor_suffix": suffix},
    )  # fmt: skip
    return ctx.get(id, "charge")


@route("GET", "/v1/charges", perm="charges")
def list_(ctx: Ctx, p: Params) -> Obj:
    customer = p.string("customer")
    payment_intent = p.string("payment_intent")
    transfer_group = p.string("transfer_group")
    where = ("payment_intent", payment_intent) if payment_intent else None
    if where is None and customer:
        where = ("customer", customer)

    def pred(o: Obj) -> bool:
        return (not customer or o.get("customer") == customer) and (
            not transfer_group or o.get("transfer_group") == transfer_group
        )

    return list_response(ctx, p, "charge", "/v1/charges", where=where, predicate=pred)
