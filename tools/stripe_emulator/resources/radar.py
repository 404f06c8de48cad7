"""Radar: reviews (elevated-risk payments) and early fraud warnings.

Reviews open when a payment's outcome is `manual_review`; `POST /v1/reviews/{id}/approve`
closes them. Early fraud warnings come from the 4000000000005423 test card; they stop being
`actionable` once the charge is fully refunded or disputed.
"""

from __future__ import annotations

from typing import Any

from ..errors import invalid
from ..params import Params
from ..router import route
from ..state import Ctx
from ..store import Obj
from .common import list_response

__all__ = ["create_early_fraud_warning", "on_dispute", "on_refund", "open_review"]

_EFW = "radar.early_fraud_warning"


def open_review(ctx: Ctx, charge: Obj, pi: Obj | None) -> Obj:
    review: Obj = {
        "id": ctx.new_id("prv"),
        "object": "review",
        "billing_zip": ((charge.get("billing_details") or {}).get("address") or {}).get(
            "postal_code"
        ),
        "charge": charge["id"],
        "closed_reason": None,
        "created": ctx.now,
        "ip_address": None,
        "ip_address_location": None,
        "livemode": False,
        "open": True,
        "opened_reason": "rule",
        "payment_intent": pi["id"] if pi else charge.get("payment_intent"),
        "reason": "rule",
        "session": None,
    }
    ctx.insert(review, ("charge",))
    ctx.emit("review.opened", review)
    return review


def _close_review(ctx: Ctx, review: Obj, reason: str) -> Obj:
    review["open"] = False
    review["reason"] = reason
    review["closed_reason"] = reason
    ctx.save(review)
    ctx.emit("review.closed", review)
    return review


def create_early_fraud_warning(ctx: Ctx, charge: Obj) -> Obj:
    efw: Obj = {
        "id": ctx.new_id("issfr"),
        "object": _EFW,
        "actionable": not (charge["refunded"] or charge["disputed"]),
        "charge": charge["id"],
        "created": ctx.now,
        "fraud_type": "made_with_stolen_card",
        "livemode": False,
        "payment_intent": charge.get("payment_intent"),
    }
    ctx.insert(efw, ("charge", "payment_intent"))
    ctx.emit("radar.early_fraud_warning.created", efw)
    return efw


def _not_actionable(ctx: Ctx, charge: Obj) -> None:
    items, _ = ctx.store.page(ctx.account, _EFW, limit=100, where=("charge", charge["id"]))
    for efw in items:
        if efw["actionable"]:
            efw["actionable"] = False
            ctx.save(efw)
            ctx.emit("radar.early_fraud_warning.updated", efw, {"actionable": True})


def on_refund(ctx: Ctx, charge: Obj) -> None:
    """A refund closes an open review (reason refunded); a full one disarms fraud warnings."""
    if charge.get("review"):
        review = ctx.find(charge["review"], "review")
        if review is not None and review["open"]:
            _close_review(ctx, review, "refunded")
    if charge["refunded"]:
        _not_actionable(ctx, charge)


def on_dispute(ctx: Ctx, charge: Obj) -> None:
    if charge.get("review"):
        review = ctx.find(charge["review"], "review")
        if review is not None and review["open"]:
            _close_review(ctx, review, "disputed")
    _not_actionable(ctx, charge)


# -- reviews ------------------------------------------------------------------------------------


@route("GET", "/v1/reviews/{id}", perm="reviews")
def retrieve_review(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    return ctx.get(id, "review")


@route("POST", "/v1/reviews/{id}/approve", perm="reviews")
def approve(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    review = ctx.get(id, "review")
    if not review["open"]:
        raise invalid(
            f"This review is already closed (reason {review['closed_reason']}).",
        )
    return _close_review(ctx, review, "approved")


@route("GET", "/v1/reviews", perm="reviews")
def list_reviews(ctx: Ctx, p: Params) -> Obj:
    return list_response(ctx, p, "review", "/v1/reviews")


# -- early fraud warnings -------------------------------------------------------------------------


@route("GET", "/v1/radar/early_fraud_warnings/{id}", perm="radar")
def retrieve_efw(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    return ctx.get(id, _EFW, "early fraud warning")


@route("GET", "/v1/radar/early_fraud_warnings", perm="radar")
def list_efw(ctx: Ctx, p: Params) -> Obj:
    charge = p.string("charge")
    pi = p.string("payment_intent")
    where: tuple[str, str] | None = None
    if charge:
        where = ("charge", charge)
    elif pi:
        where = ("payment_intent", pi)
    extra: Any = (lambda o: o.get("payment_intent") == pi) if (charge and pi) else None
    return list_response(
        ctx, p, _EFW, "/v1/radar/early_fraud_warnings", where=where, predicate=extra
    )
