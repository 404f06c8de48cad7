"""Tax rates (inclusive or exclusive percentages) and automatic tax's jurisdiction rates.

Automatic tax reads the customer's address against the configured jurisdiction table
(`billing.tax_jurisdictions`: "US-CA" or "DE" -> {percentage, display_name?, tax_type?}):
a place in the table is taxed at its rate, a place outside it at 0 ("not_collecting"), and
a customer without a country cannot be located (requires_location_inputs). The rate of each
jurisdiction is a TaxRate object the emulator creates once (ids `txr_auto_...`), as Stripe
shows automatic tax through tax rates of its own.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from ..billing.amounts import TaxRate
from ..errors import invalid
from ..params import Params, merge_metadata
from ..router import route
from ..state import Ctx
from ..store import Obj
from .common import list_response, public, public_page

__all__ = ["automatic_rate", "rate_of", "rates_of"]

_KIND = "tax_rate"
_TAX_TYPES = frozenset(
    "amusement_tax communications_tax gst hst igst jct lease_tax pst qst retail_delivery_fee "
    "rst sales_tax service_tax vat".split()
)


def rate_of(obj: Obj) -> TaxRate:
    return TaxRate(
        id=obj["id"],
        percentage=Decimal(str(obj["percentage"])),
        inclusive=obj["inclusive"],
        country=obj["country"],
        state=obj["state"],
        display_name=obj["display_name"],
        tax_type=obj["tax_type"],
        automatic=bool(obj.get("_automatic")),
    )


def rates_of(ctx: Ctx, ids: list[str]) -> list[TaxRate]:
    out = []
    for rate_id in ids:
        obj = ctx.find(rate_id, _KIND)
        if obj is not None:
            out.append(rate_of(obj))
    return out


def check_rates(ctx: Ctx, ids: list[str] | None, param: str) -> list[str]:
    """Tax rate ids a request names: they must exist and be active."""
    for rate_id in ids or []:
        obj = ctx.get(rate_id, _KIND, param=param)
        if not obj["active"]:
            raise invalid(f"Tax rate `{rate_id}` is inactive.", param=param)
    return list(ids or [])


def _percentage(p: Params, required: bool) -> float | None:
    raw = p.string("percentage", required=required)
    if raw is None:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise invalid(f"Invalid decimal: {raw}", param="percentage") from None
    if not 0 <= value <= 100:
        raise invalid("percentage must be between 0 and 100.", param="percentage")
    return float(value)


def _new_rate(ctx: Ctx, rate_id: str, **fields: Any) -> Obj:
    return {
        "id": rate_id,
        "object": _KIND,
        "active": True,
        "country": None,
        "created": ctx.now,
        "description": None,
        "display_name": "Tax",
        "effective_percentage": fields.get("percentage"),
        "flat_amount": None,
        "inclusive": False,
        "jurisdiction": None,
        "jurisdiction_level": None,
        "livemode": False,
        "metadata": {},
        "percentage": 0.0,
        "rate_type": "percentage",
        "state": None,
        "tax_type": None,
        **fields,
    }


@route("POST", "/v1/tax_rates", perm="tax_rates")
def create(ctx: Ctx, p: Params) -> Obj:
    percentage = _percentage(p, True)
    active = p.boolean("active")
    rate = _new_rate(
        ctx,
        ctx.new_id("txr"),
        active=True if active is None else active,
        country=p.string("country", max_len=2),
        description=p.string("description"),
        display_name=p.string("display_name", required=True, max_len=50),
        inclusive=bool(p.boolean("inclusive", required=True)),
        jurisdiction=p.string("jurisdiction", max_len=50),
        metadata=p.metadata() or {},
        percentage=percentage,
        state=p.string("state", max_len=2),
        tax_type=p.string("tax_type", choices=_TAX_TYPES),
    )
    p.done()
    ctx.insert(rate)
    ctx.emit("tax_rate.created", rate)
    return rate


@route("GET", "/v1/tax_rates/{id}", perm="tax_rates")
def retrieve(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    return public(ctx.get(id, _KIND))


@route("POST", "/v1/tax_rates/{id}", perm="tax_rates")
def update(ctx: Ctx, p: Params, id: str) -> Obj:
    rate = ctx.get(id, _KIND)
    before: dict[str, Any] = {}
    for key, max_len in (
        ("country", 2),
        ("description", 5000),
        ("display_name", 50),
        ("jurisdiction", 50),
        ("state", 2),
    ):
        if p.has(key):
            before[key] = rate[key]
            rate[key] = p.string(key, max_len=max_len)
    if p.has("tax_type"):
        before["tax_type"] = rate["tax_type"]
        rate["tax_type"] = p.string("tax_type", choices=_TAX_TYPES)
    if p.has("active"):
        before["active"] = rate["active"]
        rate["active"] = bool(p.boolean("active"))
    if p.has("metadata"):
        before["metadata"] = rate["metadata"]
        rate["metadata"] = merge_metadata(rate["metadata"], p.metadata())
    p.done()
    ctx.save(rate)
    ctx.emit("tax_rate.updated", public(rate), before)
    return public(rate)


@route("GET", "/v1/tax_rates", perm="tax_rates")
def list_(ctx: Ctx, p: Params) -> Obj:
    active = p.boolean("active")
    inclusive = p.boolean("inclusive")

    def pred(o: Obj) -> bool:
        return (
            not o.get("_automatic")
            and (active is None or o["active"] == active)
            and (inclusive is None or o["inclusive"] == inclusive)
        )

    return public_page(list_response(ctx, p, _KIND, "/v1/tax_rates", predicate=pred))


def automatic_rate(ctx: Ctx, address: Obj | None, inclusive: bool) -> TaxRate | str | None:
    """The automatic tax rate at `address`: a TaxRate, None (not collecting there), or
    "requires_location_inputs" when the address cannot be located."""
    country = ((address or {}).get("country") or "").upper()
    if not country:
        return "requires_location_inputs"
    state = ((address or {}).get("state") or "").upper()
    table = ctx.config.billing.tax_jurisdictions
    key = f"{country}-{state}" if state and f"{country}-{state}" in table else country
    entry = table.get(key)
    if entry is None:
        return None
    pct = Decimal(str(entry["percentage"]))
    rate_id = f"txr_auto_{key.replace('-', '_')}_{'incl' if inclusive else 'excl'}_{pct}"
    rate_id = rate_id.replace(".", "p")
    obj = ctx.find(rate_id, _KIND)
    if obj is None or Decimal(str(obj["percentage"])) != pct:
        obj = _new_rate(
            ctx,
            rate_id,
            country=country,
            state=state or None,
            inclusive=inclusive,
            display_name=str(entry.get("display_name") or "Tax"),
            percentage=float(pct),
            jurisdiction=key,
            tax_type=entry.get("tax_type") or "sales_tax",
            _automatic=True,
        )
        if ctx.find(rate_id, _KIND) is None:
            ctx.insert(obj)
        else:
            ctx.save(obj)
    return rate_of(obj)
