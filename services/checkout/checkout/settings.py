"""checkout's settings, read once from the environment (see the README's table)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from payplane.settings import GrpcServiceSettings

__all__ = ["CheckoutSettings"]


class CheckoutSettings(GrpcServiceSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    service_name: str = "checkout"
    database_url: str = "sqlite:///.run/checkout.db"
    stripe_api_key: str = Field(repr=False)
    stripe_api_base: str | None = None  # the emulator's URL; unset = api.stripe.com
    stripe_max_rps: float = 25.0
    stripe_webhook_secrets: str = Field(default="", repr=False)  # comma-separated whsec_...
    grpc_port: int = 50051
    webhook_host: str = "127.0.0.1"
    webhook_port: int = 8101
    # Fraud: the live model (empty = the shipped fraud/default_model.json) and an optional
    # shadow candidate evaluated beside it, recorded and never enforced.
    fraud_model_path: str = ""
    fraud_shadow_model_path: str = ""
    # Authorisation expiry: cancel uncaptured payments this long after authorisation, checked
    # every interval against Stripe's clock (auto | system | emulator; see stripe_clock.py).
    auth_expiry_after_s: float = Field(default=6 * 86_400, gt=0)
    auth_expiry_check_interval_s: float = Field(default=60.0, gt=0)
    stripe_clock: Literal["auto", "system", "emulator"] = "auto"
    # Reviews nobody decided before the hold lapses: reject (cancel/refund) or approve.
    review_default_on_expiry: Literal["reject", "approve"] = "reject"
    # Early fraud warnings: refund actionable ones up to this amount (minor units) at once.
    efw_auto_refund_max_minor: int = Field(default=10_000, ge=0)
    # The pending sweeper: payments and refunds still pending this long after their last step
    # are settled against Stripe (see service/sweeper.py), looked for every interval. Keep the
    # age well above the longest RPC deadline (60 s).
    pending_sweep_after_s: float = Field(default=300.0, gt=0)
    pending_sweep_interval_s: float = Field(default=30.0, gt=0)
    # Webhook backfill: every interval, publish the Stripe events of checkout's types that no
    # endpoint acknowledged (GET /v1/events), looking back at most this far (Stripe retries
    # deliveries for 3 days).
    webhook_backfill_interval_s: float = Field(default=300.0, gt=0)
    webhook_backfill_lookback_s: float = Field(default=3 * 86_400.0, gt=0)

    @property
    def webhook_secrets(self) -> list[str]:
        return [s.strip() for s in self.stripe_webhook_secrets.split(",") if s.strip()]
