"""Application fees collected by the platform on destination charges, and their refunds.

Fees are created by `transfers.destination_charge`. The platform holds the fee (balance
transaction `application_fee`, reporting category `platform_earning`); the connected account
pays it out of its destination payment (a fee line on its `payment` transaction). A refund
moves it back: `application_fee_refund` (`platform_earning_refund`) on the platform and an
`adjustment` (reporting category `fee`) on the connected account.
"""

from __future__ import annotations

import hashlib
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from .. import money
from ..errors import invalid
from ..params import Params, merge_metadata
from ..router import route
from ..state import Ctx
from ..store import Obj
from .common import get_child, list_response

__all__ = ["application_id", "new_fee", "proportion", "refund_fee"]


def application_id(platform: str) -> str:
    """The platform's Connect application id (stable per platform account)."""
    return "ca_" + hashlib.sha256(platform.encode()).hexdigest()[:32]


def proportion(total: int, part: int, whole: int) -> int:
    """`total * part / whole`, rounded half to even (0 when whole is 0)."""
    if whole == 0:
        return 0
    value = Decimal(total) * Decimal(part) / Decimal(whole)
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def new_fee(
    ctx: Ctx,
    *,
    fee_id: str,
    amount: int,
    currency: str,
    destination: str,
    payment_id: str,
    charge_id: str,
    platform_bt: Obj,
) -> Obj:
    fee: Obj = {
        "id": fee_id,
        "object": "application_fee",
        "account": destination,
        "amount": amount,
        "amount_refunded": 0,
        "application": application_id(ctx.config.platform_account),
        "balance_transaction": platform_bt["id"],
        "charge": payment_id,
        "created": ctx.now,
        "currency": currency,
        "fee_source": {"charge": payment_id, "type": "charge"},
        "livemode": False,
        "originating_transaction": charge_id,
        "refunded": False,
        "refunds": {
            "object": "list",
            "data": [],
            "has_more": False,
            "total_count": 0,
            "url": f"/v1/application_fees/{fee_id}/refunds",
        },
    }
    ctx.insert(fee, ("charge", "originating_transaction", "account"))
    ctx.emit("application_fee.created", fee)
    return fee


def refund_fee(ctx: Ctx, fee: Obj, amount: int, metadata: dict[str, str] | None = None) -> Obj:
    """Refund `amount` of the fee to the connected account; saves the fee, answers fr_."""
    remaining = fee["amount"] - fee["amount_refunded"]
    if amount > remaining:
        raise invalid(
            f"Refund amount ({amount}) is greater than the unrefunded amount on the "
            f"application fee ({remaining}).",
            "amount",
        )
    em = ctx.em
    fr_id = ctx.new_id("fr")
    plat_bt = em.store.get(fee["balance_transaction"], kind="balance_transaction")
    assert plat_bt is not None
    plat_amount = proportion(plat_bt["amount"], amount, fee["amount"])
    bt = money.post_balance_transaction(
        ctx,
        amount=-plat_amount,
        currency=plat_bt["currency"],
        type="application_fee_refund",
        reporting_category="platform_earning_refund",
        source=fr_id,
        description="Application fee refund",
    )
    payment = em.store.get(fee["charge"], fee["account"], "charge")
    dest_bt = (
        em.store.get(payment["balance_transaction"], kind="balance_transaction")
        if payment
        else None
    )
    if dest_bt is not None:
        dest_fee = sum(
            d["amount"] for d in dest_bt["fee_details"] if d["type"] == "application_fee"
        )
        money.post_balance_transaction(
            ctx,
            amount=proportion(dest_fee, amount, fee["amount"]),
            currency=dest_bt["currency"],
            type="adjustment",
            reporting_category="fee",
            source=fr_id,
            description="Application fee refund",
            account=fee["account"],
        )
    refund: Obj = {
        "id": fr_id,
        "object": "fee_refund",
        "amount": amount,
        "balance_transaction": bt["id"],
        "created": ctx.now,
        "currency": fee["currency"],
        "fee": fee["id"],
        "metadata": metadata or {},
    }
    ctx.store.insert(ctx.config.platform_account, refund, ("fee",))
    fee["amount_refunded"] += amount
    fee["refunded"] = fee["amount_refunded"] == fee["amount"]
    refunds = fee["refunds"]
    refunds["data"] = [refund, *refunds["data"]][:10]
    refunds["total_count"] = refunds.get("total_count", 0) + 1
    refunds["has_more"] = refunds["total_count"] > 10
    ctx.store.save(fee)
    ctx.em.emit(
        ctx.config.platform_account,
        "application_fee.refunded",
        fee,
        None,
        ctx.request_id,
        ctx.idempotency_key,
    )
    return refund


# -- API --------------------------------------------------------------------------------------
@route("GET", "/v1/application_fees/{id}", perm="application_fees")
def retrieve(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    return ctx.get(id, "application_fee")


@route("GET", "/v1/application_fees", perm="application_fees")
def list_(ctx: Ctx, p: Params) -> Obj:
    charge = p.string("charge")
    where: tuple[str, str] | None = None
    if charge is not None:
        where = (
            ("charge", charge) if charge.startswith("py_") else ("originating_transaction", charge)
        )
    return list_response(ctx, p, "application_fee", "/v1/application_fees", where=where)


@route("POST", "/v1/application_fees/{id}/refunds", perm="application_fees")
def create_refund(ctx: Ctx, p: Params, id: str) -> Obj:
    fee = ctx.get(id, "application_fee")
    amount = p.amount("amount")
    metadata = p.metadata()
    p.done()
    remaining = fee["amount"] - fee["amount_refunded"]
    if remaining <= 0:
        raise invalid(
            f"Application fee {id} has already been refunded.",
            "id",
            code="charge_already_refunded",
        )
    return refund_fee(ctx, fee, remaining if amount is None else amount, metadata)


@route("GET", "/v1/application_fees/{id}/refunds", perm="application_fees")
def list_refunds(ctx: Ctx, p: Params, id: str) -> Obj:
    ctx.get(id, "application_fee")
    return list_response(
        ctx, p, "fee_refund", f"/v1/application_fees/{id}/refunds", where=("fee", id)
    )


def _fee_refund(ctx: Ctx, fee_id: str, refund_id: str) -> Obj:
    return get_child(ctx, "application_fee", fee_id, "fee_refund", refund_id, "fee", "fee refund")


@route("GET", "/v1/application_fees/{fee}/refunds/{id}", perm="application_fees")
def retrieve_refund(ctx: Ctx, p: Params, fee: str, id: str) -> Obj:
    p.done()
    return _fee_refund(ctx, fee, id)


@route("POST", "/v1/application_fees/{fee}/refunds/{id}", perm="application_fees")
def update_refund(ctx: Ctx, p: Params, fee: str, id: str) -> Obj:
    refund = _fee_refund(ctx, fee, id)
    meta = merge_metadata(refund["metadata"], p.metadata())
    p.done()
    if meta != refund["metadata"]:
        before: dict[str, Any] = {"metadata": refund["metadata"]}
        refund["metadata"] = meta
        ctx.save(refund)
        ctx.emit("application_fee.refund.updated", refund, before)
    return refund
