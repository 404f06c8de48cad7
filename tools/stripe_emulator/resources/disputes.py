"""Disputes: opened by the dispute test cards, retrieve, update (evidence), close, list.

Opening debits the charge's settlement amount (at today's rate) plus the dispute fee in one
`adjustment` balance transaction (reporting_category `dispute`). The emulator-only call
`POST /_emulator/disputes/{id}/close` {"outcome": "won" | "lost"} decides it; a won dispute
reinstates amount and fee with an `adjustment` / `dispute_reversal`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import money
from ..errors import invalid
from ..params import Params, merge_metadata
from ..router import control, route
from ..state import Ctx
from ..store import Obj
from .charges import settlement_of
from .common import list_response

if TYPE_CHECKING:
    from ..app import EmulatorApp

__all__ = ["open_dispute"]

DAY = 86_400
_EVIDENCE_FIELDS = (
    "access_activity_log", "billing_address", "cancellation_policy",
    "cancellation_policy_disclosure", "cancellation_rebuttal", "customer_communication",
    "customer_email_address", "customer_name", "customer_purchase_ip", "customer_signature",
    "duplicate_charge_documentation", "duplicate_charge_explanation", "duplicate_charge_id",
    "product_description", "receipt", "refund_policy", "refund_policy_disclosure",
    "refund_refusal_explanation", "service_date", "service_documentation", "shipping_address",
    "shipping_carrier", "shipping_date", "shipping_documentation", "shipping_tracking_number",
    "uncategorized_file", "uncategorized_text",
)  # fmt: skip
_NETWORK_REASON = {"fraudulent": "10.4", "product_not_received": "13.1", "general": "13.7"}
_OPEN = ("needs_response", "under_review", "warning_needs_response", "warning_under_review")


def open_dispute(ctx: Ctx, charge: Obj, reason: str) -> Obj:
    """Open a dispute on a captured charge; returns the charge (now `disputed`)."""
    settle, captured = settlement_of(ctx, charge)
    rate = money.exchange_rate(ctx.em, charge["currency"], settle)
    settled = money.convert(captured, charge["currency"], settle, rate)
    dp_id = ctx.new_id("dp")
    fee = ctx.config.pricing.dispute_fee
    bt = money.post_balance_transaction(
        ctx,
        amount=-settled,
        currency=settle,
        type="adjustment",
        reporting_category="dispute",
        source=dp_id,
        fee_details=[money.fee_detail(fee, settle, description="Dispute fee")],
        exchange_rate=rate if settle != charge["currency"] else None,
        description=f"Chargeback withdrawal for {charge['id']}",
    )
    card = charge["payment_method_details"]["card"]
    dispute: Obj = {
        "id": dp_id,
        "object": "dispute",
        "amount": captured,
        "balance_transactions": [bt],
        "charge": charge["id"],
        "created": ctx.now,
        "currency": charge["currency"],
        "enhanced_eligibility_types": [],
        "evidence": {**{f: None for f in _EVIDENCE_FIELDS}, "enhanced_evidence": {}},
        "evidence_details": {
            "due_by": (ctx.now // DAY + 8) * DAY - 1,
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "payment_intent": charge["payment_intent"],
        "payment_method_details": {
            "card": {
                "brand": card["brand"],
                "case_type": "chargeback",
                "network": card["network"],
                "network_reason_code": _NETWORK_REASON.get(reason, "13.7"),
            },
            "type": "card",
        },
        "reason": reason,
        "status": "needs_response",
    }
    ctx.insert(dispute, ("charge", "payment_intent"))
    before = {"disputed": charge["disputed"]}
    charge["disputed"] = True
    ctx.save(charge)
    ctx.emit("charge.dispute.created", dispute)
    ctx.emit("charge.dispute.funds_withdrawn", dispute)
    ctx.emit("charge.updated", charge, before)
    from .radar import on_dispute

    on_dispute(ctx, charge)
    return charge


def _close(ctx: Ctx, dispute: Obj, won: bool) -> Obj:
    if dispute["status"] not in _OPEN:
        raise invalid(
            f"This dispute is already closed (status {dispute['status']}).",
        )
    previous = dispute["status"]
    if won:
        debit = dispute["balance_transactions"][0]
        bt = money.post_balance_transaction(
            ctx,
            amount=-debit["amount"],
            currency=debit["currency"],
            type="adjustment",
            reporting_category="dispute_reversal",
            source=dispute["id"],
            fee_details=[
                money.fee_detail(-debit["fee"], debit["currency"], description="Dispute fee")
            ],
            exchange_rate=None if debit["exchange_rate"] is None else _rate(debit),
            description=f"Chargeback reversal for {dispute['charge']}",
        )
        dispute["balance_transactions"].append(bt)
        dispute["status"] = "won"
    else:
        dispute["status"] = "lost"
    ctx.save(dispute)
    if won:
        ctx.emit("charge.dispute.funds_reinstated", dispute)
    ctx.emit("charge.dispute.closed", dispute, {"status": previous})
    return dispute


def _rate(bt: Obj) -> Any:
    from decimal import Decimal

    return Decimal(str(bt["exchange_rate"]))


@route("GET", "/v1/disputes/{id}", perm="disputes")
def retrieve(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    return ctx.get(id, "dispute")


@route("POST", "/v1/disputes/{id}", perm="disputes")
def update(ctx: Ctx, p: Params, id: str) -> Obj:
    dispute = ctx.get(id, "dispute")
    before: dict[str, Any] = {}
    evidence = p.sub("evidence")
    submit = p.boolean("submit")
    meta = p.metadata() if p.has("metadata") else None
    if evidence is not None:
        updated = dict(dispute["evidence"])
        for field in _EVIDENCE_FIELDS:
            if evidence.has(field):
                updated[field] = evidence.string(field, max_len=20_000)
        if evidence.has("enhanced_evidence"):
            evidence.raw("enhanced_evidence")
        evidence.done()
        if dispute["status"] not in _OPEN:
            raise invalid("This dispute is closed: its evidence can no longer be changed.")
        if updated != dispute["evidence"]:
            before["evidence"] = dispute["evidence"]
            dispute["evidence"] = updated
            dispute["evidence_details"]["has_evidence"] = True
    p.done()
    if meta is not None:
        merged = merge_metadata(dispute["metadata"], meta)
        if merged != dispute["metadata"]:
            before["metadata"] = dispute["metadata"]
            dispute["metadata"] = merged
    if submit is None or submit:
        if evidence is not None and dispute["status"] in ("needs_response", "under_review"):
            before.setdefault("status", dispute["status"])
            dispute["status"] = "under_review"
            dispute["evidence_details"]["submission_count"] += 1
        elif evidence is not None and dispute["status"].startswith("warning_"):
            before.setdefault("status", dispute["status"])
            dispute["status"] = "warning_under_review"
            dispute["evidence_details"]["submission_count"] += 1
    ctx.save(dispute)
    if before:
        ctx.emit("charge.dispute.updated", dispute, before)
    return dispute


@route("POST", "/v1/disputes/{id}/close", perm="disputes")
def close(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    dispute = ctx.get(id, "dispute")
    return _close(ctx, dispute, won=False)


@route("GET", "/v1/disputes", perm="disputes")
def list_(ctx: Ctx, p: Params) -> Obj:
    charge = p.string("charge")
    pi = p.string("payment_intent")
    where = ("charge", charge) if charge else (("payment_intent", pi) if pi else None)
    return list_response(ctx, p, "dispute", "/v1/disputes", where=where)


@control("POST", "/_emulator/disputes/{id}/close")
def emulator_close(app: EmulatorApp, body: dict[str, Any], id: str) -> Obj:
    outcome = body.get("outcome")
    if outcome not in ("won", "lost"):
        raise ValueError('outcome must be "won" or "lost"')
    account = app.em.store.owner(id)
    if account is None or app.em.store.kind_of(id) != "dispute":
        raise invalid(f"No such dispute: '{id}'", code="resource_missing")
    ctx = app.em.ctx(account)
    return _close(ctx, ctx.get(id, "dispute"), won=outcome == "won")
