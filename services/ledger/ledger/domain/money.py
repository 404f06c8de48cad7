"""Currency arithmetic as Stripe does it: minor units, rates as decimals, half-even rounding."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

__all__ = ["ZERO_DECIMAL", "convert", "exponent", "parse_rate", "round_half_even"]

# Stripe's zero-decimal currencies (amounts are whole units).
ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
     "xaf", "xof", "xpf"}
)  # fmt: skip


def exponent(currency: str) -> int:
    return 0 if currency in ZERO_DECIMAL else 2


def parse_rate(value: str | float | None) -> Decimal | None:
    """A rate as Stripe reports it (a float, or a decimal string); None when not converted."""
    if value is None or value == "":
        return None
    return Decimal(str(value))


def convert(amount: int, source: str, target: str, rate: Decimal) -> int:
    """Minor units of `source` to minor units of `target` at `rate` (major per major)."""
    major = Decimal(amount) / (Decimal(10) ** exponent(source))
    return int(
        (major * rate * (Decimal(10) ** exponent(target))).quantize(Decimal(1), ROUND_HALF_EVEN)
    )


def round_half_even(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half to even, in integers (no floats)."""
    q, r = divmod(numerator, denominator)
    twice = 2 * r
    if twice > denominator or (twice == denominator and q % 2 == 1):
        q += 1
    return q
