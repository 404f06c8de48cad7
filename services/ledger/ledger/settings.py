"""ledger's settings, read once from the environment (see the README's table)."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from payplane.settings import GrpcServiceSettings

from .domain.discrepancies import CERTAIN, KINDS, HealingPolicy
from .domain.pricing import PricingModel

__all__ = ["LedgerSettings"]


class LedgerSettings(GrpcServiceSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    service_name: str = "ledger"
    database_url: str = "sqlite:///.run/ledger.db"
    grpc_port: int = 50054
    # Stripe (read-only, a restricted key: balance, payouts, charges, refunds, disputes).
    # Unset: the ledger books events but neither imports nor reconciles.
    stripe_api_key: str | None = Field(default=None, repr=False)
    stripe_api_base: str | None = None  # the emulator's URL; unset = api.stripe.com
    stripe_max_rps: float = 5.0  # the ledger's share of the account's rate limit
    stripe_account_country: str = "US"  # cards from elsewhere are "international"
    # Continuous reconciliation: seconds between runs (0 = only when asked over gRPC).
    reconcile_interval_s: float = 300.0
    # The pricing model the business expects Stripe to apply (Stripe's standard by default).
    pricing_percent_bp: int = 290
    pricing_fixed: int = 30
    pricing_international_bp: int = 150
    pricing_fx_bp: int = 100
    pricing_dispute_fee: int = 1500
    pricing_tolerance: int = 0
    # Healing policy: which certain kinds may correct themselves, and up to what amount.
    heal_kinds: str = ",".join(sorted(CERTAIN))
    heal_max_amount: int = 500_000

    @field_validator("heal_kinds")
    @classmethod
    def _kinds(cls, value: str) -> str:
        unknown = {k.strip() for k in value.split(",") if k.strip()} - set(KINDS)
        if unknown:
            raise ValueError(f"unknown discrepancy kinds: {sorted(unknown)}")
        return value

    @property
    def pricing(self) -> PricingModel:
        return PricingModel(
            percent_bp=self.pricing_percent_bp,
            fixed=self.pricing_fixed,
            international_bp=self.pricing_international_bp,
            fx_bp=self.pricing_fx_bp,
            dispute_fee=self.pricing_dispute_fee,
            tolerance=self.pricing_tolerance,
        )

    @property
    def healing(self) -> HealingPolicy:
        kinds = frozenset(k.strip() for k in self.heal_kinds.split(",") if k.strip())
        return HealingPolicy(heal_kinds=kinds, max_amount=self.heal_max_amount)
