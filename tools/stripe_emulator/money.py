"""Fees, currency conversion, balance transactions and balances.

Every movement of funds goes through `post_balance_transaction`, which keeps the balance
(pending and available per currency) equal to the sum of balance transaction nets, and
schedules the moment a pending transaction becomes available.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from .params import ZERO_DECIMAL
from .state import Ctx, Emulator, on_restore, timer
from .store import Obj

__all__ = [
    "ChargeAmounts",
    "balance_of",
    "charge_amounts",
    "convert",
    "exchange_rate",
    "post_balance_transaction",
]

DAY = 86_400


def _exp(currency: str) -> int:
    return 0 if currency in ZERO_DECIMAL else 2


def exchange_rate(em: Emulator, source: str, target: str) -> Decimal:
    """Units of `target` per unit of `source` (major units), from the configured table."""
    if source == target:
        return Decimal(1)
    rates = em.config.fx_rates
    return (Decimal(str(rates[target])) / Decimal(str(rates[source]))).quantize(Decimal("0.000001"))


def convert(amount: int, source: str, target: str, rate: Decimal) -> int:
    """Convert minor units at `rate`, rounding half to even to the target's minor unit."""
    major = Decimal(amount) / (Decimal(10) ** _exp(source))
    converted = major * rate * (Decimal(10) ** _exp(target))
    return int(converted.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _pct(amount: int, bp: int) -> Decimal:
    return Decimal(amount) * Decimal(bp) / Decimal(10_000)


class ChargeAmounts:
    """What a card charge settles as: gross, fee breakdown and rate."""

    def __init__(
        self, gross: int, currency: str, fee: int, rate: Decimal | None, fee_parts: dict[str, int]
    ) -> None:
        self.gross = gross
        self.currency = currency
        self.fee = fee
        self.rate = rate
        self.fee_parts = fee_parts


def settlement_currency(em: Emulator, account: str, currency: str) -> str:
    acct = em.store.get(account, kind="account")
    settle = (acct or {}).get("default_currency") or em.config.default_currency
    return currency if currency == settle else settle


def charge_amounts(
    em: Emulator, account: str, amount: int, currency: str, card_country: str | None
) -> ChargeAmounts:
    """Apply the pricing model: percent + fixed, +international, +conversion."""
    pricing = em.config.pricing
    settle = settlement_currency(em, account, currency)
    rate = exchange_rate(em, currency, settle) if settle != currency else None
    gross = convert(amount, currency, settle, rate) if rate is not None else amount
    acct = em.store.get(account, kind="account")
    acct_country = (acct or {}).get("country") or em.config.country
    parts = {"processing": _pct(gross, pricing.percent_bp) + pricing.fixed}
    if card_country and card_country != acct_country:
        parts["international"] = _pct(gross, pricing.international_bp)
    if rate is not None:
        parts["currency_conversion"] = _pct(gross, pricing.fx_bp)
    total = sum(parts.values(), Decimal(0))
    fee = int(total.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    rounded = {k: int(v.quantize(Decimal(1), rounding=ROUND_HALF_EVEN)) for k, v in parts.items()}
    return ChargeAmounts(gross, settle, fee, rate, rounded)


def fee_detail(
    amount: int, currency: str, type_: str = "stripe_fee", **extra: Any
) -> dict[str, Any]:
    descriptions = {
        "stripe_fee": "Stripe processing fees",
        "application_fee": "Application fee",
        "tax": "Tax",
    }
    return {
        "amount": amount,
        "application": extra.get("application"),
        "currency": currency,
        "description": extra.get("description", descriptions.get(type_, type_)),
        "type": type_,
    }


def balance_of(em: Emulator, account: str, currency: str) -> dict[str, int]:
    return em.balances.setdefault((account, currency), {"available": 0, "pending": 0})


def post_balance_transaction(
    ctx: Ctx,
    *,
    amount: int,
    currency: str,
    type: str,
    reporting_category: str,
    source: str | None,
    fee_details: list[dict[str, Any]] | None = None,
    exchange_rate: Decimal | None = None,
    description: str | None = None,
    available_on: int | None = None,
    account: str | None = None,
) -> Obj:
    """Record a movement of funds and apply it to the balance.

    `available_on` defaults to now (immediately available); charges pass a later date so
    their net sits in pending until the emulator clock reaches it.
    """
    em = ctx.em
    acct = account or ctx.account
    fee_details = fee_details or []
    fee = sum(int(f["amount"]) for f in fee_details)
    now = em.now()
    avail = now if available_on is None else available_on
    status = "available" if avail <= now else "pending"
    bt: Obj = {
        "id": ctx.new_id("txn"),
        "object": "balance_transaction",
        "amount": amount,
        "available_on": avail,
        "balance_type": "payments",
        "created": now,
        "currency": currency,
        "description": description,
        "exchange_rate": float(exchange_rate) if exchange_rate is not None else None,
        "fee": fee,
        "fee_details": fee_details,
        "net": amount - fee,
        "reporting_category": reporting_category,
        "source": source,
        "status": status,
        "type": type,
    }
    em.store.insert(acct, bt, ("type", "source"))
    bal = balance_of(em, acct, currency)
    bal[status] += bt["net"]
    if status == "pending":
        em.schedule(avail, "balance.settle", bt["id"])
    return bt


def _available_on(em: Emulator, days: int) -> int:
    """Stripe makes funds available at midnight UTC `days` days after the charge."""
    return (em.now() // DAY + days) * DAY


def charge_available_on(em: Emulator, immediate: bool = False, account: str | None = None) -> int:
    """When a charge's funds become available: the platform's settlement delay, or a
    connected account's payout schedule `delay_days`."""
    if immediate:
        return em.now()
    days = em.config.settlement_delay_days
    if account is not None and account != em.config.platform_account:
        acct = em.store.get(account, kind="account")
        schedule = ((acct or {}).get("settings") or {}).get("payouts", {}).get("schedule", {})
        days = int(schedule.get("delay_days", days))
    return _available_on(em, days)


@timer("balance.settle")
def _settle(em: Emulator, bt_id: str) -> None:
    bt = em.store.get(bt_id, kind="balance_transaction")
    if bt is None or bt["status"] != "pending":
        return
    account = em.store.owner(bt_id)
    assert account is not None
    bt["status"] = "available"
    em.store.save(bt)
    bal = balance_of(em, account, bt["currency"])
    bal["pending"] -= bt["net"]
    bal["available"] += bt["net"]
    for hook in SETTLE_HOOKS:
        hook(em, account, bt)


SETTLE_HOOKS: list[Any] = []


@on_restore
def _rebuild_balances(em: Emulator) -> None:
    """Balances are the sum of balance transaction nets; pending ones settle on schedule."""
    em.balances.clear()
    for account in em.store.accounts_with("balance_transaction"):
        for bt_id in em.store.iter_ids(account, "balance_transaction", newest_first=False):
            bt = em.store.get(bt_id)
            assert bt is not None
            balance_of(em, account, bt["currency"])[bt["status"]] += bt["net"]
            if bt["status"] == "pending":
                em.schedule(bt["available_on"], "balance.settle", bt_id)
