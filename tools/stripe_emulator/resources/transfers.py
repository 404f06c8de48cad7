"""Transfers to connected accounts, their reversals, and destination charges.

A transfer debits the platform (balance transaction `transfer`, negative) and credits the
connected account through a destination payment `py_...` (a charge object on the connected
account, balance transaction `payment`, reporting category `charge`). A reversal credits the
platform (`transfer_refund`, reporting category `transfer_reversal`) and refunds the
destination payment (`pyr_...`, `payment_refund` on the connected account).

Destination charges (`transfer_data[destination]` + `application_fee_amount`) follow
Stripe's model: the platform transfers the whole charge amount (or `transfer_data[amount]`)
and the connected account pays the application fee out of its payment (a fee line on its
`payment` transaction), which the platform receives as an `application_fee` transaction.
The payments engineer's charge and refund code calls `destination_charge` and
`reverse_on_refund`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .. import money
from ..errors import invalid
from ..params import Params, merge_metadata
from ..router import route
from ..state import Ctx
from ..store import Obj
from . import application_fees, balance, connect
from .common import get_child, list_response

__all__ = ["destination_charge", "reverse_on_refund"]

_TRANSFER_CAPABILITIES = ("transfers", "crypto_transfers", "legacy_payments")


def _embedded_list(url: str) -> Obj:
    return {"object": "list", "data": [], "has_more": False, "total_count": 0, "url": url}


def _payment_object(ctx: Ctx, py_id: str, amount: int, currency: str, tr: Obj, bt_id: str) -> Obj:
    """The destination payment: a charge on the connected account, funded by a transfer."""
    return {
        "id": py_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": bt_id,
        "billing_details": {
            "address": {
                "city": None,
                "country": None,
                "line1": None,
                "line2": None,
                "postal_code": None,
                "state": None,
            },
            "email": None,
            "name": None,
            "phone": None,
            "tax_id": None,
        },
        "calculated_statement_descriptor": None,
        "captured": True,
        "created": ctx.now,
        "currency": currency,
        "customer": None,
        "description": None,
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "fraud_details": {},
        "livemode": False,
        "metadata": {},
        "on_behalf_of": None,
        "outcome": None,
        "paid": True,
        "payment_intent": None,
        "payment_method": None,
        "payment_method_details": {"stripe_account": {}, "type": "stripe_account"},
        "receipt_email": None,
        "receipt_number": None,
        "receipt_url": None,
        "refunded": False,
        "refunds": _embedded_list(f"/v1/charges/{py_id}/refunds"),
        "review": None,
        "shipping": None,
        "source": {"id": ctx.config.platform_account, "object": "account"},
        "source_transfer": tr["id"],
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "succeeded",
        "transfer_data": None,
        "transfer_group": tr["transfer_group"],
    }


def _make_transfer(
    ctx: Ctx,
    *,
    amount: int,
    currency: str,
    destination: str,
    platform_amount: int,
    platform_currency: str,
    available_on: int | None,
    source_transaction: str | None = None,
    transfer_group: str | None = None,
    description: str | None = None,
    metadata: dict[str, str] | None = None,
    fee_amount: int = 0,
    charge_id: str | None = None,
) -> tuple[Obj, Obj, Obj | None]:
    """Post both sides of a transfer (and the application fee); answers (tr, py, fee)."""
    em = ctx.em
    tr_id, py_id = ctx.new_id("tr"), ctx.new_id("py")
    fee_id = ctx.new_id("fee") if fee_amount > 0 else None
    plat_bt = money.post_balance_transaction(
        ctx,
        amount=-platform_amount,
        currency=platform_currency,
        type="transfer",
        reporting_category="transfer",
        source=tr_id,
        description=description,
        available_on=available_on,
    )
    dest_amount, dest_currency = connect.settlement(em, destination, amount, currency)
    fee_details: list[dict[str, Any]] = []
    if fee_amount > 0:
        dest_fee, _ = connect.settlement(em, destination, fee_amount, currency)
        fee_details.append(
            money.fee_detail(
                dest_fee,
                dest_currency,
                "application_fee",
                application=application_fees.application_id(ctx.config.platform_account),
            )
        )
    dest_bt = money.post_balance_transaction(
        ctx,
        amount=dest_amount,
        currency=dest_currency,
        type="payment",
        reporting_category="charge",
        source=py_id,
        fee_details=fee_details,
        available_on=available_on,
        account=destination,
    )
    tr: Obj = {
        "id": tr_id,
        "object": "transfer",
        "amount": amount,
        "amount_reversed": 0,
        "balance_transaction": plat_bt["id"],
        "created": ctx.now,
        "currency": currency,
        "description": description,
        "destination": destination,
        "destination_payment": py_id,
        "livemode": False,
        "metadata": metadata or {},
        "reversals": _embedded_list(f"/v1/transfers/{tr_id}/reversals"),
        "reversed": False,
        "source_transaction": source_transaction,
        "source_type": "card",
        "transfer_group": transfer_group,
    }
    payment = _payment_object(ctx, py_id, amount, currency, tr, dest_bt["id"])
    fee: Obj | None = None
    if fee_id is not None:
        fee_plat = proportion_of(platform_amount, fee_amount, amount)
        fee_bt = money.post_balance_transaction(
            ctx,
            amount=fee_plat,
            currency=platform_currency,
            type="application_fee",
            reporting_category="platform_earning",
            source=fee_id,
            description="Application fee",
            available_on=available_on,
        )
        payment["application_fee"] = fee_id
        payment["application_fee_amount"] = fee_amount
        fee = application_fees.new_fee(
            ctx,
            fee_id=fee_id,
            amount=fee_amount,
            currency=currency,
            destination=destination,
            payment_id=py_id,
            charge_id=charge_id or py_id,
            platform_bt=fee_bt,
        )
    em.store.insert(destination, payment, ("source_transfer",))
    ctx.insert(tr, ("destination", "transfer_group", "source_transaction"))
    ctx.emit("transfer.created", tr)
    return tr, payment, fee


def proportion_of(total: int, part: int, whole: int) -> int:
    return application_fees.proportion(total, part, whole)


def _charge_bt(ctx: Ctx, charge: Obj) -> Obj | None:
    bt_id = charge.get("balance_transaction")
    if isinstance(bt_id, dict):
        bt_id = bt_id.get("id")
    if not isinstance(bt_id, str):
        return None
    return ctx.store.get(bt_id, kind="balance_transaction")


def _future(available_on: int | None, now: int) -> int | None:
    return available_on if available_on is not None and available_on > now else None


# -- the payments engineer's entry points -----------------------------------------------------
def destination_charge(
    ctx: Ctx,
    charge: Obj,
    destination: str,
    amount: int | None,
    application_fee_amount: int | None,
) -> None:
    """Move a succeeded destination charge's funds to `destination` (no balance check).

    Call after the charge's platform `charge` balance transaction is posted. Creates the
    transfer (amount: `amount` or the charge amount, source_transaction = the charge), its
    destination payment on the connected account, and the application fee (object and the
    platform's `application_fee` transaction) when `application_fee_amount` is set. Funds
    become available on both sides when the charge's funds do. Sets charge["transfer"],
    ["application_fee"], ["application_fee_amount"] and ["transfer_data"]; does not save the
    charge (the caller does).
    """
    captured = int(charge.get("amount_captured") or charge["amount"])
    tr_amount = amount if amount is not None else captured
    fee_amount = min(application_fee_amount or 0, tr_amount)
    currency = str(charge["currency"])
    bt = _charge_bt(ctx, charge)
    plat_amount, plat_currency = _platform_side_for(ctx, bt, currency, tr_amount, captured)
    tr, _payment, fee = _make_transfer(
        ctx,
        amount=tr_amount,
        currency=currency,
        destination=destination,
        platform_amount=plat_amount,
        platform_currency=plat_currency,
        available_on=_future(bt["available_on"] if bt else None, ctx.now),
        source_transaction=charge["id"],
        transfer_group=charge.get("transfer_group"),
        fee_amount=fee_amount,
        charge_id=charge["id"],
    )
    charge["transfer"] = tr["id"]
    charge["application_fee"] = fee["id"] if fee else None
    charge["application_fee_amount"] = application_fee_amount
    charge["transfer_data"] = {"amount": amount, "destination": destination}


def _platform_side_for(
    ctx: Ctx, bt: Obj | None, currency: str, amount: int, captured: int
) -> tuple[int, str]:
    """`amount` of the charge currency in the currency the charge settled in on the platform."""
    if bt is None or bt["currency"] == currency:
        return amount, currency
    rate = bt.get("exchange_rate")
    if rate is not None:
        return money.convert(amount, currency, bt["currency"], Decimal(str(rate))), bt["currency"]
    return proportion_of(bt["amount"], amount, captured), bt["currency"]


def reverse_on_refund(
    ctx: Ctx, charge: Obj, refund: Obj, reverse_transfer: bool, refund_application_fee: bool
) -> None:
    """Pull a destination charge's funds back in proportion to `refund["amount"]`.

    With reverse_transfer, reverses the charge's transfer by transfer.amount * refund /
    charge amount (capped at what is left) and sets refund["transfer_reversal"]; with
    refund_application_fee, refunds the application fee in the same proportion. Saves the
    transfer and fee; does not save the charge or the refund (the caller does).
    """
    refund_amount = int(refund["amount"])
    charge_amount = int(charge.get("amount_captured") or charge["amount"])
    tr_id = charge.get("transfer")
    if reverse_transfer and isinstance(tr_id, str):
        tr = ctx.store.get(tr_id, ctx.account, "transfer")
        if tr is not None:
            part = proportion_of(tr["amount"], refund_amount, charge_amount)
            part = min(part, tr["amount"] - tr["amount_reversed"])
            if part > 0:
                rev = _reverse(ctx, tr, part, source_refund=refund["id"], check_balance=False)
                refund["transfer_reversal"] = rev["id"]
    fee_id = charge.get("application_fee")
    if refund_application_fee and isinstance(fee_id, str):
        fee = ctx.store.get(fee_id, ctx.account, "application_fee")
        if fee is not None:
            part = proportion_of(fee["amount"], refund_amount, charge_amount)
            part = min(part, fee["amount"] - fee["amount_refunded"])
            if part > 0:
                application_fees.refund_fee(ctx, fee, part)


# -- reversals --------------------------------------------------------------------------------
def _reverse(
    ctx: Ctx,
    tr: Obj,
    amount: int,
    *,
    source_refund: str | None = None,
    description: str | None = None,
    metadata: dict[str, str] | None = None,
    check_balance: bool = True,
) -> Obj:
    em = ctx.em
    remaining = tr["amount"] - tr["amount_reversed"]
    if amount > remaining:
        raise invalid(
            f"You have requested a reversal of {amount}, but the transfer has only "
            f"{remaining} remaining to reverse.",
            "amount",
        )
    dest = tr["destination"]
    plat_bt = em.store.get(tr["balance_transaction"], kind="balance_transaction")
    payment = em.store.get(tr["destination_payment"], dest, "charge")
    dest_bt = (
        em.store.get(payment["balance_transaction"], kind="balance_transaction")
        if payment
        else None
    )
    final = amount == remaining
    dest_amount = 0
    if dest_bt is not None:
        dest_amount = proportion_of(dest_bt["amount"], amount, tr["amount"])
        if check_balance:
            available = money.balance_of(em, dest, dest_bt["currency"])["available"]
            if available < dest_amount:
                raise balance.insufficient_funds()
    trr_id, pyr_id = ctx.new_id("trr"), ctx.new_id("pyr")
    plat_amount = -plat_bt["amount"] if plat_bt else amount
    bt = money.post_balance_transaction(
        ctx,
        amount=proportion_of(plat_amount, amount, tr["amount"]),
        currency=plat_bt["currency"] if plat_bt else tr["currency"],
        type="transfer_refund",
        reporting_category="transfer_reversal",
        source=trr_id,
        description=description,
    )
    pyr_bt_id: str | None = None
    if dest_bt is not None and payment is not None:
        pyr_bt = money.post_balance_transaction(
            ctx,
            amount=-dest_amount,
            currency=dest_bt["currency"],
            type="payment_refund",
            reporting_category="refund",
            source=pyr_id,
            account=dest,
        )
        pyr_bt_id = pyr_bt["id"]
        pyr: Obj = {
            "id": pyr_id,
            "object": "refund",
            "amount": amount,
            "balance_transaction": pyr_bt_id,
            "charge": payment["id"],
            "created": ctx.now,
            "currency": tr["currency"],
            "customer": None,
            "customer_account": None,
            "destination_details": None,
            "metadata": {},
            "payment_intent": None,
            "payment_method": None,
            "reason": None,
            "receipt_number": None,
            "source_transfer_reversal": trr_id,
            "status": "succeeded",
            "transfer_reversal": None,
        }
        em.store.insert(dest, pyr, ("charge",))
        payment["amount_refunded"] += amount
        payment["refunded"] = payment["amount_refunded"] >= payment["amount"]
        refunds = payment["refunds"]
        refunds["data"] = [pyr, *refunds["data"]][:10]
        refunds["total_count"] = refunds.get("total_count", 0) + 1
        refunds["has_more"] = refunds["total_count"] > 10
        em.store.save(payment)
    rev: Obj = {
        "id": trr_id,
        "object": "transfer_reversal",
        "amount": amount,
        "balance_transaction": bt["id"],
        "created": ctx.now,
        "currency": tr["currency"],
        "destination_payment_refund": pyr_id if pyr_bt_id else None,
        "metadata": metadata or {},
        "source_refund": source_refund,
        "transfer": tr["id"],
    }
    ctx.insert(rev, ("transfer",))
    tr["amount_reversed"] += amount
    tr["reversed"] = final
    reversals = tr["reversals"]
    reversals["data"] = [rev, *reversals["data"]][:10]
    reversals["total_count"] = reversals.get("total_count", 0) + 1
    reversals["has_more"] = reversals["total_count"] > 10
    ctx.save(tr)
    ctx.emit("transfer.reversed", tr)
    return rev


# -- API --------------------------------------------------------------------------------------
def _require_platform(ctx: Ctx) -> None:
    if not ctx.is_platform:
        raise invalid("Only a Connect platform can create transfers.", None)


def _destination(ctx: Ctx, dest_id: str) -> Obj:
    acct = ctx.store.get(dest_id, ctx.config.platform_account, "account")
    if acct is None or dest_id == ctx.config.platform_account:
        raise invalid(f"No such destination: '{dest_id}'", "destination", "resource_missing")
    if acct["type"] != "standard":
        caps = acct.get("capabilities") or {}
        if not any(caps.get(c) == "active" for c in _TRANSFER_CAPABILITIES):
            raise invalid(
                "Your destination account needs to have at least one of the following "
                "capabilities enabled: transfers, crypto_transfers, legacy_payments",
                "destination",
            )
    return acct


def _transferred_from(ctx: Ctx, charge_id: str) -> int:
    total = 0
    cursor: str | None = None
    while True:
        items, more = ctx.store.page(
            ctx.account,
            "transfer",
            limit=100,
            starting_after=cursor,
            where=("source_transaction", charge_id),
        )
        total += sum(int(t["amount"]) - int(t["amount_reversed"]) for t in items)
        if not more or not items:
            return total
        cursor = items[-1]["id"]


@route("POST", "/v1/transfers", perm="transfers")
def create(ctx: Ctx, p: Params) -> Obj:
    amount = p.amount("amount", required=True)
    currency = p.currency("currency", required=True)
    destination = p.string("destination", required=True)
    assert amount is not None and currency is not None and destination is not None
    transfer_group = p.string("transfer_group")
    source_transaction = p.string("source_transaction")
    description = p.string("description", max_len=5000)
    metadata = p.metadata()
    p.string("source_type", choices={"card", "bank_account", "fpx"})
    p.done()
    _require_platform(ctx)
    _destination(ctx, destination)
    available_on: int | None = None
    if source_transaction is not None:
        charge = ctx.store.get(source_transaction, ctx.account, "charge")
        if charge is None:
            raise invalid(
                f"No such charge: '{source_transaction}'",
                "source_transaction",
                "resource_missing",
            )
        if charge.get("status") != "succeeded":
            raise invalid(
                "The source transaction must be a succeeded charge.", "source_transaction"
            )
        if charge["currency"] != currency:
            raise invalid(
                f"The currency of source_transaction's balance transaction "
                f"({charge['currency']}) must be the same as the transfer currency "
                f"({currency}).",
                "currency",
            )
        left = (
            int(charge["amount"])
            - int(charge.get("amount_refunded") or 0)
            - _transferred_from(ctx, source_transaction)
        )
        if amount > left:
            raise balance.insufficient_funds()
        bt = _charge_bt(ctx, charge)
        available_on = _future(bt["available_on"] if bt else None, ctx.now)
        captured = int(charge.get("amount_captured") or charge["amount"])
        plat_amount, plat_currency = _platform_side_for(ctx, bt, currency, amount, captured)
    else:
        if money.balance_of(ctx.em, ctx.account, currency)["available"] < amount:
            raise balance.insufficient_funds()
        plat_amount, plat_currency = amount, currency
    tr, _payment, _fee = _make_transfer(
        ctx,
        amount=amount,
        currency=currency,
        destination=destination,
        platform_amount=plat_amount,
        platform_currency=plat_currency,
        available_on=available_on,
        source_transaction=source_transaction,
        transfer_group=transfer_group,
        description=description,
        metadata=metadata,
    )
    return tr


@route("GET", "/v1/transfers/{id}", perm="transfers")
def retrieve(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    return ctx.get(id, "transfer")


@route("POST", "/v1/transfers/{id}", perm="transfers")
def update(ctx: Ctx, p: Params, id: str) -> Obj:
    tr = ctx.get(id, "transfer")
    before: dict[str, Any] = {}
    if p.has("description"):
        value = p.string("description", max_len=5000)
        if value != tr["description"]:
            before["description"], tr["description"] = tr["description"], value
    if p.has("metadata"):
        meta = merge_metadata(tr["metadata"], p.metadata())
        if meta != tr["metadata"]:
            before["metadata"], tr["metadata"] = tr["metadata"], meta
    p.done()
    if before:
        ctx.save(tr)
        ctx.emit("transfer.updated", tr, before)
    return tr


@route("GET", "/v1/transfers", perm="transfers")
def list_(ctx: Ctx, p: Params) -> Obj:
    destination = p.string("destination")
    group = p.string("transfer_group")
    where: tuple[str, str] | None = None
    if destination is not None:
        where = ("destination", destination)
    elif group is not None:
        where = ("transfer_group", group)
    predicate = (lambda o: o["transfer_group"] == group) if (group and destination) else None
    return list_response(ctx, p, "transfer", "/v1/transfers", where=where, predicate=predicate)


@route("POST", "/v1/transfers/{id}/reversals", perm="transfers")
def create_reversal(ctx: Ctx, p: Params, id: str) -> Obj:
    tr = ctx.get(id, "transfer")
    amount = p.amount("amount")
    description = p.string("description", max_len=5000)
    metadata = p.metadata()
    refund_fee = p.boolean("refund_application_fee") or False
    p.done()
    remaining = tr["amount"] - tr["amount_reversed"]
    if remaining <= 0:
        raise invalid(f"Transfer {id} has already been fully reversed.", "amount")
    amount = remaining if amount is None else amount
    rev = _reverse(
        ctx,
        tr,
        amount,
        description=description,
        metadata=metadata,
        check_balance=not tr["source_transaction"],
    )
    if refund_fee:
        payment = ctx.store.get(tr["destination_payment"], tr["destination"], "charge")
        fee_id = payment.get("application_fee") if payment else None
        fee = ctx.store.get(fee_id, ctx.account, "application_fee") if fee_id else None
        if fee is not None:
            part = min(
                proportion_of(fee["amount"], amount, tr["amount"]),
                fee["amount"] - fee["amount_refunded"],
            )
            if amount == remaining:
                part = fee["amount"] - fee["amount_refunded"]
            if part > 0:
                application_fees.refund_fee(ctx, fee, part)
    return rev


@route("GET", "/v1/transfers/{id}/reversals", perm="transfers")
def list_reversals(ctx: Ctx, p: Params, id: str) -> Obj:
    ctx.get(id, "transfer")
    return list_response(
        ctx, p, "transfer_reversal", f"/v1/transfers/{id}/reversals", where=("transfer", id)
    )


def _reversal(ctx: Ctx, tr_id: str, rev_id: str) -> Obj:
    return get_child(
        ctx, "transfer", tr_id, "transfer_reversal", rev_id, "transfer", "transfer_reversal"
    )


@route("GET", "/v1/transfers/{transfer}/reversals/{id}", perm="transfers")
def retrieve_reversal(ctx: Ctx, p: Params, transfer: str, id: str) -> Obj:
    p.done()
    return _reversal(ctx, transfer, id)


@route("POST", "/v1/transfers/{transfer}/reversals/{id}", perm="transfers")
def update_reversal(ctx: Ctx, p: Params, transfer: str, id: str) -> Obj:
    rev = _reversal(ctx, transfer, id)
    meta = merge_metadata(rev["metadata"], p.metadata())
    p.done()
    if meta != rev["metadata"]:
        rev["metadata"] = meta
        ctx.save(rev)
    return rev
