"""The pricing model the business expects Stripe to apply (configurable; Stripe's standard).

A charge's fee = round_half_even(gross * (percent + international? + conversion?) + fixed),
in the settlement currency's minor units, the way Stripe's standard pricing reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from .money import round_half_even

__all__ = ["PricingModel"]


@dataclass(frozen=True)
class PricingModel:
    percent_bp: int = 290  # 2.9 %
    fixed: int = 30  # minor units of the settlement currency
    international_bp: int = 150  # +1.5 % for cards issued outside the account's country
    fx_bp: int = 100  # +1 % when the charge is converted
    dispute_fee: int = 1500
    tolerance: int = 0  # minor units a fee may differ before it is a discrepancy

    def basis_points(self, international: bool, converted: bool) -> int:
        return (
            self.percent_bp
            + (self.international_bp if international else 0)
            + (self.fx_bp if converted else 0)
        )

    def expected_fee(self, gross: int, *, international: bool, converted: bool) -> int:
        bp = self.basis_points(international, converted)
        return round_half_even(gross * bp + self.fixed * 10_000, 10_000)
