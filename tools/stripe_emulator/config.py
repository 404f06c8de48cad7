"""Emulator configuration: everything a test or `make run` may tune, with Stripe's defaults."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["Config", "Pricing"]


@dataclass
class Pricing:
    """Stripe's standard card pricing: percent in basis points, fixed in settlement minor units."""

    percent_bp: int = 290  # 2.9 %
    fixed: int = 30  # 30 minor units of the settlement currency
    international_bp: int = 150  # +1.5 % for cards issued outside the account's country
    fx_bp: int = 100  # +1 % when the charge currency is converted
    dispute_fee: int = 1500  # debited with a dispute, in settlement minor units
    instant_payout_bp: int = 100  # Instant Payouts: 1 % of the amount ...
    instant_payout_min: int = 50  # ... and at least this, in the payout currency's minor units


# Units of each currency per 1 USD. Rates between two currencies derive from these.
DEFAULT_RATES: dict[str, float] = {
    "usd": 1.0, "eur": 0.92, "gbp": 0.79, "jpy": 150.0, "cad": 1.36, "aud": 1.52,
    "chf": 0.88, "sek": 10.5, "nok": 10.6, "dkk": 6.9, "pln": 4.0, "czk": 23.0,
    "huf": 360.0, "nzd": 1.65, "sgd": 1.34, "hkd": 7.8, "mxn": 17.0, "brl": 5.0,
    "inr": 83.0, "krw": 1330.0, "zar": 18.5, "aed": 3.67, "ils": 3.7, "thb": 35.5,
    "myr": 4.7, "php": 56.0, "idr": 15600.0, "try": 32.0, "ron": 4.6, "bgn": 1.8,
}  # fmt: skip


@dataclass
class Config:
    # Rate limits (requests/s per account). None switches that limiter off.
    global_rate: float | None = 25.0  # test mode; 100 behaves like live mode
    endpoint_rate: float | None = 25.0
    max_concurrent: int | None = None  # in-flight requests per account
    lock_wait_s: float = 0.5  # how long a write waits for another holding the object
    idempotency_ttl_s: int = 24 * 3600
    max_body_bytes: int = 1 << 20
    # Auth: any sk_test_ key works unless api_keys is set; rk_test_ keys need permissions.
    api_keys: list[str] = field(default_factory=list)
    restricted_keys: dict[str, dict[str, str]] = field(default_factory=dict)
    platform_account: str = "acct_1PlatformEmulator0"
    country: str = "US"
    default_currency: str = "usd"
    pricing: Pricing = field(default_factory=Pricing)
    fx_rates: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_RATES))
    settlement_delay_days: int = 2  # charges become available after this many days
    payout_delay_days: int = 2  # a payout arrives (in_transit -> paid) after this many days
    auth_hold_days: int = 7  # uncaptured PaymentIntents are canceled after this
    # Webhook delivery: attempt n waits retry_base_s * retry_factor**(n-1), capped.
    webhook_retry_base_s: float = 60.0
    webhook_retry_factor: float = 2.0
    webhook_retry_max_s: float = 3600.0
    webhook_max_attempts: int = 16
    webhook_timeout_s: float = 10.0
    request_log_size: int = 200_000
    seed: int | None = None
    payout_schedule: str = "daily"  # the platform's payout interval: daily | manual | ...
    # Connect: how long a verification (identity, tax id, URL) takes on the emulator clock,
    # and the deadline given to requirements made currently due by a volume threshold.
    connect_verification_delay_s: int = 60
    connect_requirements_deadline_days: float = 14.0
    # A payout to a failing bank account shows `paid` first and turns `failed` this many days
    # later (Stripe: up to 5 business days); 0 fails it at its arrival date.
    payout_return_days: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def update(self, values: dict[str, Any]) -> None:
        """Apply a partial update (from `POST /_emulator/config`), refusing unknown keys."""
        names = {f.name for f in fields(self)}
        for key, value in values.items():
            if key not in names:
                raise KeyError(key)
            if key == "pricing":
                current = asdict(self.pricing)
                unknown = set(value) - set(current)
                if unknown:
                    raise KeyError(f"pricing.{sorted(unknown)[0]}")
                current.update(value)
                self.pricing = Pricing(**{k: int(v) for k, v in current.items()})
            elif key == "fx_rates":
                self.fx_rates.update({k.lower(): float(v) for k, v in value.items()})
            else:
                setattr(self, key, value)
