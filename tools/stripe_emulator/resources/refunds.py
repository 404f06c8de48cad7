"""Refunds: create (by charge or PaymentIntent), retrieve, update, list; and, emulator only,
a refund the card network fails after Stripe accepted it.

A refund debits the settlement balance at today's exchange rate (STRIPE-FACTS), so a refund
after a rate change settles at a different amount than the charge credited. Stripe keeps its
processing fee: the refund balance transaction has no fee. A failed refund returns what its
balance transaction debited (a `refund_failure` transaction, `failure_balance_transaction`)
and its amount is refundable on the charge again.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .. import money
from ..errors import invalid
from ..params import ZERO_DECIMAL, Params, merge_metadata
from ..router import control, route
from ..state import Ctx
from ..store import Obj
from .charges import call_external, merge_back, settlement_of
from .common import list_response

if TYPE_CHECKING:
    from ..app import EmulatorApp

__all__ = ["create_refund", "fail_refund"]

_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
# Stripe's documented `failure_reason` values.
FAILURE_REASONS = frozenset(
    {"charge_for_pending_refund_disputed", "declined", "expired_or_canceled_card",
     "insufficient_funds", "lost_or_stolen_card", "merchant_request", "unknown"}
)  # fmt: skip


def _money(amount: int, currency: str) -> str:
    if currency in ZERO_DECIMAL:
        return f"{amount} {currency.upper()}"
    sym = {"usd": "$", "eur": "€", "gbp": "£"}.get(currency)
    major = f"{amount / 100:,.2f}"
    return f"{sym}{major}" if sym else f"{major} {currency.upper()}"


def create_refund(
    ctx: Ctx,
    charge: Obj,
    amount: int | None,
    reason: str | None,
    metadata: dict[str, str],
    *,
    reverse_transfer: bool = False,
    refund_application_fee: bool = False,
) -> Obj:
    if charge["status"] != "succeeded" or not charge["paid"]:
        raise invalid(
            f"Charge {charge['id']} has a status of {charge['status']} and cannot be refunded.",
            param="charge",
        )
    if not charge["captured"]:
        raise invalid(
            f"Charge {charge['id']} has not been captured: cancel its PaymentIntent to release "
            "the authorization instead.",
            param="charge",
            code="charge_not_refundable",
        )
    if charge["disputed"]:
        raise invalid(
            f"Charge {charge['id']} has been charged back; cannot issue a refund.",
            param="charge",
            code="charge_disputed",
        )
    remaining = charge["amount"] - charge["amount_refunded"]
    if remaining <= 0:
        raise invalid(
            f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"
        )
    amount = remaining if amount is None else amount
    if amount > remaining:
        cur = charge["currency"]
        raise invalid(
            f"Refund amount ({_money(amount, cur)}) is greater than unrefunded amount on charge "
            f"({_money(remaining, cur)})",
            param="amount",
            code="amount_too_large",
        )
    re_id = ctx.new_id("re")
    settle, _ = settlement_of(ctx, charge)
    rate = money.exchange_rate(ctx.em, charge["currency"], settle)
    settled = money.convert(amount, charge["currency"], settle, rate)
    bt = money.post_balance_transaction(
        ctx,
        amount=-settled,
        currency=settle,
        type="refund",
        reporting_category="refund",
        source=re_id,
        exchange_rate=rate if settle != charge["currency"] else None,
        description="REFUND FOR CHARGE" + (f" ({charge['description']})"
                                           if charge["description"] else ""),
    )  # fmt: skip
    refund: Obj = {
        "id": re_id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": bt["id"],
        "charge": charge["id"],
        "created": ctx.now,
        "currency": charge["currency"],
        "customer": charge["customer"],
        "customer_account": None,
        "destination_details": {
            "card": {
                "reference": None,
                "reference_status": "pending",
                "reference_type": "acquirer_reference_number",
                "type": "refund",
            },
            "type": "card",
        },
        "metadata": metadata,
        "payment_intent": charge["payment_intent"],
        "payment_method": charge["payment_method"],
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }
    ctx.insert(refund, ("charge", "payment_intent"))
    before = {
        "amount_refunded": charge["amount_refunded"],
        "refunded": charge["refunded"],
        "refunds": charge["refunds"],
    }
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
    refunds = charge["refunds"]
    refunds["data"] = [refund, *refunds["data"]][:10]
    refunds["total_count"] = refunds.get("total_count", 0) + 1
    refunds["has_more"] = refunds["total_count"] > 10
    ctx.save(charge)
    if charge.get("transfer_data") and charge["transfer_data"].get("destination"):
        from .transfers import (  # type: ignore[import-untyped, unused-ignore]  # lazy: another module
            reverse_on_refund,
        )

        charge_before = copy.deepcopy(charge)

        def hook(r: Obj) -> None:
            reverse_on_refund(ctx, charge, r, reverse_transfer, refund_application_fee)

        refund = call_external(ctx, refund, hook)
        charge["refunds"]["data"][0] = refund
        charge = merge_back(ctx, charge, charge_before)
    ctx.emit("refund.created", refund)
    ctx.emit("charge.refunded", charge, before)
    from .radar import on_refund

    on_refund(ctx, charge)
    return refund


@route("POST", "/v1/refunds", perm="refunds")
def create(ctx: Ctx, p: Params) -> Obj:
    charge_id = p.string("charge")
    pi_id = p.string("payment_intent")
    amount = p.amount("amount")
    reason = p.string("reason", choices=_REASONS)
    metadata = p.metadata() or {}
    reverse_transfer = p.boolean("reverse_transfer") or False
    refund_fee = p.boolean("refund_application_fee") or False
    p.string("instructions_email")
    p.done()
    if charge_id and pi_id:
        raise invalid(
            "You can only specify one of these parameters: charge, payment_intent.",
            param="payment_intent",
        )
    if pi_id:
        pi = ctx.get(pi_id, "payment_intent", param="payment_intent")
        if pi["status"] != "succeeded" or not pi["latest_charge"]:
            raise invalid(
                f"This PaymentIntent ({pi_id}) does not have a successful charge to refund.",
                param="payment_intent",
            )
        charge = ctx.get(pi["latest_charge"], "charge", param="payment_intent")
    elif charge_id:
        charge = ctx.get(charge_id, "charge", param="charge")
    else:
        raise invalid(
            "One of the following params should be provided for this request: payment_intent "
            "or charge.",
        )
    return create_refund(
        ctx, charge, amount, reason, metadata,
        reverse_transfer=reverse_transfer, refund_application_fee=refund_fee,
    )  # fmt: skip


@route("GET", "/v1/refunds/{id}", perm="refunds")
def retrieve(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    return ctx.get(id, "refund")


@route("POST", "/v1/refunds/{id}", perm="refunds")
def update(ctx: Ctx, p: Params, id: str) -> Obj:
    refund = ctx.get(id, "refund")
    before: dict[str, Any] = {}
    if p.has("metadata"):
        meta = merge_metadata(refund["metadata"], p.metadata())
        if meta != refund["metadata"]:
            before["metadata"] = refund["metadata"]
            refund["metadata"] = meta
    p.done()
    ctx.save(refund)
    if before:
        ctx.emit("refund.updated", refund, before)
        ctx.emit("charge.refund.updated", refund, before)
    return refund


@route("GET", "/v1/refunds", perm="refunds")
def list_(ctx: Ctx, p: Params) -> Obj:
    charge = p.string("charge")
    pi = p.string("payment_intent")
    where = ("charge", charge) if charge else (("payment_intent", pi) if pi else None)
    return list_response(
        ctx, p, "refund", "/v1/refunds", where=where,
        predicate=(lambda o: o.get("payment_intent") == pi) if (pi and charge) else None,
    )  # fmt: skip


@route("GET", "/v1/charges/{id}/refunds", perm="refunds")
def list_for_charge(ctx: Ctx, p: Params, id: str) -> Obj:
    ctx.get(id, "charge")
    return list_response(ctx, p, "refund", f"/v1/charges/{id}/refunds", where=("charge", id))


def fail_refund(ctx: Ctx, refund: Obj, reason: str) -> Obj:
    """The refund could not reach the customer: `failed` with `failure_reason`, the funds its
    balance transaction took returned by a `refund_failure` one at the same rate, the amount
    refundable on the charge again; refund.updated, charge.refund.updated (each with
    `previous_attributes`) and refund.failed, as Stripe sends them."""
    if refund["status"] not in ("pending", "requires_action", "succeeded"):
        raise ValueError(f"a refund with status {refund['status']} cannot fail")
    taken = ctx.get(refund["balance_transaction"], "balance_transaction")
    rate = taken.get("exchange_rate")
    returned = money.post_balance_transaction(
        ctx,
        amount=-int(taken["amount"]),
        currency=taken["currency"],
        type="refund_failure",
        reporting_category="refund_failure",
        source=refund["id"],
        exchange_rate=None if rate is None else Decimal(str(rate)),
        description="REFUND FAILURE",
    )
    before = {
        "status": refund["status"],
        "failure_balance_transaction": refund.get("failure_balance_transaction"),
        "failure_reason": refund.get("failure_reason"),
    }
    refund["status"] = "failed"
    refund["failure_reason"] = reason
    refund["failure_balance_transaction"] = returned["id"]
    ctx.save(refund)
    charge = ctx.get(refund["charge"], "charge")
    charge["amount_refunded"] = max(charge["amount_refunded"] - refund["amount"], 0)
    charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
    charge["refunds"]["data"] = [
        refund if r["id"] == refund["id"] else r for r in charge["refunds"]["data"]
    ]
    ctx.save(charge)
    ctx.emit("refund.updated", refund, before)
    ctx.emit("charge.refund.updated", refund, before)
    ctx.emit("refund.failed", refund)
    return refund


@control("POST", "/_emulator/refunds/{id}/fail")
def fail_control(app: EmulatorApp, body: dict[str, Any], id: str) -> Obj:
    """Fail one refund now, as the card network refusing it would (emulator only).

    JSON body: {"failure_reason": "expired_or_canceled_card"} (one of Stripe's documented
    reasons; default `unknown`). A pending or succeeded refund fails; answers the refund.
    """
    reason = body.get("failure_reason", "unknown")
    if reason not in FAILURE_REASONS:
        raise ValueError(f"failure_reason must be one of {sorted(FAILURE_REASONS)}")
    account = app.em.store.owner(id)
    if account is None or app.em.store.kind_of(id) != "refund":
        raise invalid(f"No such refund: '{id}'", code="resource_missing")
    ctx = app.em.ctx(account)
    return fail_refund(ctx, ctx.get(id, "refund"), str(reason))
