"""What things cost: a price for a quantity, a proration, an invoice's discounts and taxes.

All money is integer minor units; intermediate arithmetic is Decimal, rounded half up to the
minor unit once per line (Stripe rounds each line, then sums).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from ..store import Obj

__all__ = [
    "TaxRate",
    "Totals",
    "compute_totals",
    "price_amount",
    "prorate",
    "proration_fraction",
    "round_minor",
]


def round_minor(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def _unit(price: Obj) -> Decimal:
    decimal = price.get("unit_amount_decimal")
    return Decimal(decimal) if decimal is not None else _dec(price.get("unit_amount"))


def _transformed(price: Obj, quantity: Decimal) -> Decimal:
    t = price.get("transform_quantity")
    if not t:
        return quantity
    q = quantity / Decimal(int(t["divide_by"]))
    return q.quantize(Decimal(1), rounding=ROUND_CEILING if t["round"] == "up" else ROUND_FLOOR)


def _tier_amounts(tier: Obj) -> tuple[Decimal, Decimal]:
    unit = tier.get("unit_amount_decimal") or tier.get("unit_amount")
    flat = tier.get("flat_amount_decimal") or tier.get("flat_amount")
    return _dec(unit), _dec(flat)


def price_amount(price: Obj, quantity: Decimal | int, tiers: Sequence[Obj] | None = None) -> int:
    """The amount a price charges for `quantity` over one full period."""
    q = Decimal(quantity)
    if price.get("billing_scheme") != "tiered":
        return round_minor(_unit(price) * _transformed(price, q))
    tiers = tiers if tiers is not None else price.get("tiers") or []
    if price.get("tiers_mode") == "volume":
        for tier in tiers:
            if tier["up_to"] is None or q <= tier["up_to"]:
                unit, flat = _tier_amounts(tier)
                return round_minor(unit * q + (flat if q > 0 else 0))
        return 0
    total = Decimal(0)  # graduated: each tier prices the units that fall inside it
    lower = Decimal(0)
    for tier in tiers:
        if q <= lower:
            break
        upper = Decimal(tier["up_to"]) if tier["up_to"] is not None else q
        units = min(q, upper) - lower
        unit, flat = _tier_amounts(tier)
        total += unit * units + flat
        lower = upper
    return round_minor(total)


def proration_fraction(start: int, end: int, at: int) -> Decimal:
    """The share of [start, end) left after `at`, to the second."""
    if end <= start:
        return Decimal(0)
    left = min(max(end - at, 0), end - start)
    return Decimal(left) / Decimal(end - start)


def prorate(amount: int, fraction: Decimal) -> int:
    return round_minor(Decimal(amount) * fraction)


@dataclass
class TaxRate:
    """A rate applied to one line: a TaxRate object's, or automatic tax's."""

    id: str | None  # txr_ id; None for automatic tax
    percentage: Decimal
    inclusive: bool
    country: str | None = None
    state: str | None = None
    display_name: str = "Tax"
    tax_type: str | None = None
    automatic: bool = False


@dataclass
class Totals:
    subtotal: int
    subtotal_excluding_tax: int
    total_discount_amounts: list[Obj]
    total_taxes: list[Obj]
    total_excluding_tax: int
    total: int


def _allocate(total: int, weights: list[int]) -> list[int]:
    """Split `total` in proportion to `weights` (largest remainder), summing exactly."""
    whole = sum(weights)
    if whole <= 0 or total <= 0:
        return [0] * len(weights)
    shares = [Decimal(total) * w / whole for w in weights]
    floors = [int(s) for s in shares]
    rest = total - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: shares[i] - floors[i], reverse=True)
    for i in order[:rest]:
        floors[i] += 1
    return floors


def compute_totals(
    lines: list[Obj],
    discounts: list[tuple[str, Obj]],
    line_rates: list[list[TaxRate]],
) -> Totals:
    """Fill each line's discount_amounts, discounts and taxes; return the invoice's totals.

    `discounts` are (discount id, coupon) applied to every discountable line the coupon
    applies to, in order, each on what the previous ones left; `line_rates[i]` are the rates
    of line i. Inclusive taxes are inside a line's amount; exclusive ones are added on top.
    """
    remaining = [int(line["amount"]) for line in lines]
    per_line: list[list[Obj]] = [[] for _ in lines]
    totals_by_discount: list[Obj] = []
    for discount_id, coupon in discounts:
        products = ((coupon.get("applies_to") or {}).get("products")) or None
        eligible = [
            i
            for i, line in enumerate(lines)
            if line.get("discountable")
            and remaining[i] > 0
            and (products is None or _product_of(line) in products)
        ]
        if coupon.get("percent_off") is not None:
            pct = Decimal(str(coupon["percent_off"]))
            amounts = {
                i: min(remaining[i], round_minor(remaining[i] * pct / 100)) for i in eligible
            }
        else:
            cap = sum(remaining[i] for i in eligible)
            shares = _allocate(
                min(int(coupon.get("amount_off") or 0), cap), [remaining[i] for i in eligible]
            )
            amounts = dict(zip(eligible, shares, strict=True))
        used = 0
        for i, amount in amounts.items():
            if amount:
                per_line[i].append({"amount": amount, "discount": discount_id})
                remaining[i] -= amount
                used += amount
        totals_by_discount.append({"amount": used, "discount": discount_id})
    taxes: dict[tuple[str | None, bool, str], Obj] = {}
    inclusive_total = 0
    exclusive_total = 0
    for i, line in enumerate(lines):
        line["discount_amounts"] = per_line[i]
        line["discounts"] = [d["discount"] for d in per_line[i]]
        rates = line_rates[i] if i < len(line_rates) else []
        taxable = remaining[i]
        inc = [r for r in rates if r.inclusive]
        exc = [r for r in rates if not r.inclusive]
        inc_pct = sum((r.percentage for r in inc), Decimal(0))
        line_taxes: list[Obj] = []
        inc_amounts = [round_minor(Decimal(taxable) * r.percentage / (100 + inc_pct)) for r in inc]
        net = taxable - sum(inc_amounts)
        for rate, amount in zip(inc, inc_amounts, strict=True):
            line_taxes.append(_tax_entry(rate, amount, net, "inclusive"))
        for rate in exc:
            amount = round_minor(Decimal(net) * rate.percentage / 100)
            line_taxes.append(_tax_entry(rate, amount, net, "exclusive"))
        line["taxes"] = line_taxes
        for t in line_taxes:
            key = (
                t["tax_rate_details"]["tax_rate"],
                t["tax_behavior"] == "inclusive",
                t["taxability_reason"] or "",
            )
            agg = taxes.setdefault(key, {**t, "amount": 0, "taxable_amount": 0})
            agg["amount"] += t["amount"]
            agg["taxable_amount"] += t["taxable_amount"]
            if t["tax_behavior"] == "inclusive":
                inclusive_total += t["amount"]
            else:
                exclusive_total += t["amount"]
    subtotal = sum(int(line["amount"]) for line in lines)
    discount_total = sum(d["amount"] for d in totals_by_discount)
    return Totals(
        subtotal=subtotal,
        subtotal_excluding_tax=subtotal - inclusive_total,
        total_discount_amounts=totals_by_discount,
        total_taxes=list(taxes.values()),
        total_excluding_tax=subtotal - discount_total - inclusive_total,
        total=subtotal - discount_total + exclusive_total,
    )


def _tax_entry(rate: TaxRate, amount: int, taxable: int, behavior: str) -> Obj:
    return {
        "amount": amount,
        "tax_behavior": behavior,
        "tax_rate_details": {"tax_rate": rate.id},
        "taxability_reason": "standard_rated" if rate.automatic else None,
        "taxable_amount": taxable,
        "type": "tax_rate_details",
    }


def _product_of(line: Obj) -> str | None:
    details = (line.get("pricing") or {}).get("price_details") or {}
    product: str | None = details.get("product")
    return product
