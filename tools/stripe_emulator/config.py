"""Emulator configuration: everything a test or `make run` may tune, with Stripe's defaults."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

__all__ = ["Billing", "Config", "Pricing"]


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


@dataclass
class Billing:
    """Stripe Billing's account settings (Dashboard > Billing) and its fixed delays.

    Retries imitate Smart Retries' recommended policy, 8 tries within 2 weeks: the first
    attempt, then one retry at each offset (days after the first failed attempt).
    """

    retry_days: list[float] = field(default_factory=lambda: [1, 3, 5, 7, 9, 11, 14])
    # After the last retry fails: the subscription is canceled, marked unpaid, or left past_due;
    # the invoice is marked uncollectible or left past due (open).
    end_action: str = "cancel"  # cancel | unpaid | past_due
    end_invoice_action: str = "past_due"  # past_due | uncollectible
    # send_invoice subscriptions: days after an invoice's due date before end_action applies.
    send_invoice_grace_days: int = 30
    finalize_after_s: int = 3600  # a subscription draft is finalized 1 h after invoice.created
    incomplete_expires_s: int = 23 * 3600
    trial_will_end_s: int = 3 * 86_400
    upcoming_renewal_days: int | None = 7  # invoice.upcoming before a renewal; None: off
    # Automatic tax: "US-CA" (country-state) or "DE" (country) -> rate. A location outside the
    # table is taxed at 0 (not registered there); a customer without an address cannot be taxed.
    tax_jurisdictions: dict[str, dict[str, Any]] = field(default_factory=dict)

    ACTIONS: ClassVar[tuple[str, ...]] = ("cancel", "unpaid", "past_due")
    INVOICE_ACTIONS: ClassVar[tuple[str, ...]] = ("past_due", "uncollectible")

    def update(self, values: dict[str, Any]) -> None:
        names = {f.name for f in fields(self)}
        for key, value in values.items():
            if key not in names:
                raise KeyError(f"billing.{key}")
            if key == "retry_days":
                days = [float(v) for v in value]
                if any(d <= 0 for d in days) or days != sorted(days):
                    raise ValueError("billing.retry_days must be increasing positive offsets")
                value = days
            elif key == "end_action" and value not in self.ACTIONS:
                raise ValueError(f"billing.end_action must be one of {', '.join(self.ACTIONS)}")
            elif key == "end_invoice_action" and value not in self.INVOICE_ACTIONS:
                raise ValueError(
                    "billing.end_invoice_action must be one of " + ", ".join(self.INVOICE_ACTIONS)
                )
            elif key == "tax_jurisdictions":
                value = {str(k).upper(): dict(v) for k, v in value.items()}
                for rate in value.values():
                    float(rate["percentage"])
            setattr(self, key, value)


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
    billing: Billing = field(default_factory=Billing)

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
            elif key == "billing":
                self.billing.update(value)
            elif key == "fx_rates":
                self.fx_rates.update({k.lower(): float(v) for k, v in value.items()})
            else:
                setattr(self, key, value)
