"""A customer's credit balance (balance transactions) and tax ids.

The balance is what the customer owes (positive) or is owed (negative, a credit); every
change is a customer balance transaction, and invoices draw on it when finalized.
"""

from __future__ import annotations

from ..errors import invalid
from ..params import Params, merge_metadata
from ..router import route
from ..state import Ctx
from ..store import Obj
from .common import get_child, list_response

__all__ = ["add_balance", "tax_ids_from"]

_TXN = "customer_balance_transaction"
_TAX_ID = "tax_id"
# type -> country (None: the value's first two letters, as for EU VAT numbers)
_TAX_ID_TYPES: dict[str, str | None] = {
    "eu_vat": None,
    "gb_vat": "GB",
    "us_ein": "US",
    "au_abn": "AU",
    "au_arn": "AU",
    "ca_bn": "CA",
    "ca_gst_hst": "CA",
    "ca_qst": "CA",
    "ch_vat": "CH",
    "no_vat": "NO",
    "nz_gst": "NZ",
    "in_gst": "IN",
    "jp_cn": "JP",
    "jp_trn": "JP",
    "sg_gst": "SG",
    "sg_uen": "SG",
    "za_vat": "ZA",
    "br_cnpj": "BR",
    "br_cpf": "BR",
    "mx_rfc": "MX",
    "ae_trn": "AE",
    "eu_oss_vat": None,
    "is_vat": "IS",
    "kr_brn": "KR",
    "hk_br": "HK",
}
_VERIFIED = frozenset({"eu_vat", "gb_vat", "au_abn"})  # Stripe verifies these asynchronously


def add_balance(
    ctx: Ctx,
    cus: Obj,
    amount: int,
    currency: str | None,
    type_: str,
    *,
    description: str | None = None,
    invoice: str | None = None,
    metadata: dict[str, str] | None = None,
    emit_customer: bool = True,
) -> Obj:
    """Move the customer's balance by `amount` (in place) and record the balance transaction,
    which it returns; with `emit_customer` the customer is saved and customer.updated sent."""
    currency = currency or cus["currency"] or ctx.config.default_currency
    if cus["currency"] is None:
        cus["currency"] = currency
    elif cus["currency"] != currency:
        raise invalid(
            f"The customer's balance is in {cus['currency']}; this transaction is in {currency}.",
            param="currency",
        )
    before = {"balance": cus["balance"]}
    cus["balance"] += amount
    txn: Obj = {
        "id": ctx.new_id("cbtxn"),
        "object": _TXN,
        "amount": amount,
        "checkout_session": None,
        "created": ctx.now,
        "credit_note": None,
        "currency": currency,
        "customer": cus["id"],
        "customer_account": None,
        "description": description,
        "ending_balance": cus["balance"],
        "invoice": invoice,
        "livemode": False,
        "metadata": metadata or {},
        "type": type_,
    }
    ctx.insert(txn, ("customer",))
    if emit_customer:
        ctx.save(cus)
        ctx.emit("customer.updated", cus, before)
    return txn


@route("POST", "/v1/customers/{id}/balance_transactions", perm="customers")
def create_txn(ctx: Ctx, p: Params, id: str) -> Obj:
    cus = ctx.get(id, "customer")
    amount = p.integer("amount", required=True)
    currency = p.currency("currency", required=True)
    description = p.string("description", max_len=350)
    metadata = p.metadata()
    p.done()
    if not amount:
        raise invalid("The amount must not be zero.", param="amount")
    assert amount is not None
    return add_balance(
        ctx, cus, amount, currency, "adjustment", description=description, metadata=metadata
    )


@route("GET", "/v1/customers/{id}/balance_transactions/{txn}", perm="customers")
def retrieve_txn(ctx: Ctx, p: Params, id: str, txn: str) -> Obj:
    p.done()
    return get_child(ctx, "customer", id, _TXN, txn, "customer", "customer_balance_transaction")


@route("POST", "/v1/customers/{id}/balance_transactions/{txn}", perm="customers")
def update_txn(ctx: Ctx, p: Params, id: str, txn: str) -> Obj:
    obj = get_child(ctx, "customer", id, _TXN, txn, "customer", "customer_balance_transaction")
    if p.has("description"):
        obj["description"] = p.string("description", max_len=350)
    if p.has("metadata"):
        obj["metadata"] = merge_metadata(obj["metadata"] or {}, p.metadata())
    p.done()
    ctx.save(obj)
    return obj


@route("GET", "/v1/customers/{id}/balance_transactions", perm="customers")
def list_txns(ctx: Ctx, p: Params, id: str) -> Obj:
    ctx.get(id, "customer")
    invoice = p.string("invoice")
    return list_response(
        ctx,
        p,
        _TXN,
        f"/v1/customers/{id}/balance_transactions",
        where=("customer", id),
        predicate=(lambda o: o.get("invoice") == invoice) if invoice else None,
    )


# -- tax ids ----------------------------------------------------------------------------------


def _new_tax_id(ctx: Ctx, cus: Obj, p: Params) -> Obj:
    type_ = p.string("type", required=True, choices=frozenset(_TAX_ID_TYPES))
    value = p.string("value", required=True, max_len=50)
    p.done()
    assert type_ is not None and value is not None
    country = _TAX_ID_TYPES[type_] or (value[:2].upper() if value[:2].isalpha() else None)
    return {
        "id": ctx.new_id("txi"),
        "object": _TAX_ID,
        "country": country,
        "created": ctx.now,
        "customer": cus["id"],
        "customer_account": None,
        "livemode": False,
        "owner": {"customer": cus["id"], "customer_account": None, "type": "customer"},
        "type": type_,
        "value": value,
        "verification": {
            "status": "pending" if type_ in _VERIFIED else "unavailable",
            "verified_address": None,
            "verified_name": None,
        },
    }


def tax_ids_from(ctx: Ctx, cus: Obj, items: list[object]) -> list[Obj]:
    """Create tax_id_data[] of a new customer (events are the caller's, after its own)."""
    out = []
    for i, item in enumerate(items):
        tax_id = _new_tax_id(
            ctx, cus, Params(item if isinstance(item, dict) else None, f"tax_id_data[{i}]")
        )
        ctx.insert(tax_id, ("customer",))
        out.append(tax_id)
    return out


@route("POST", "/v1/customers/{id}/tax_ids", perm="customers")
def create_tax_id(ctx: Ctx, p: Params, id: str) -> Obj:
    cus = ctx.get(id, "customer")
    tax_id = _new_tax_id(ctx, cus, p)
    ctx.insert(tax_id, ("customer",))
    ctx.emit("customer.tax_id.created", tax_id)
    return tax_id


@route("GET", "/v1/customers/{id}/tax_ids/{tax_id}", perm="customers")
def retrieve_tax_id(ctx: Ctx, p: Params, id: str, tax_id: str) -> Obj:
    p.done()
    return get_child(ctx, "customer", id, _TAX_ID, tax_id, "customer", "tax_id")


@route("DELETE", "/v1/customers/{id}/tax_ids/{tax_id}", perm="customers")
def delete_tax_id(ctx: Ctx, p: Params, id: str, tax_id: str) -> Obj:
    p.done()
    obj = get_child(ctx, "customer", id, _TAX_ID, tax_id, "customer", "tax_id")
    ctx.store.delete(tax_id)
    ctx.emit("customer.tax_id.deleted", obj)
    return {"id": tax_id, "object": _TAX_ID, "deleted": True}


@route("GET", "/v1/customers/{id}/tax_ids", perm="customers")
def list_tax_ids(ctx: Ctx, p: Params, id: str) -> Obj:
    ctx.get(id, "customer")
    return list_response(ctx, p, _TAX_ID, f"/v1/customers/{id}/tax_ids", where=("customer", id))


def customer_tax_ids(ctx: Ctx, customer_id: str) -> list[Obj]:
    """[{type, value}] of a customer's tax ids, as an invoice records them."""
    found, _ = ctx.store.page(ctx.account, _TAX_ID, limit=100, where=("customer", customer_id))
    return [{"type": t["type"], "value": t["value"]} for t in reversed(found)]
