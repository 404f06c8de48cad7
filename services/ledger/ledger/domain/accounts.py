"""The chart of accounts (one set per currency; a balance is per account and currency).

Signs: every posting is signed minor units, debit positive, credit negative. Asset and
expense accounts carry debit balances; revenue and liability accounts credit balances.

| account | kind | what moves it |
| --- | --- | --- |
| stripe_pending | asset | every balance transaction's net, until Stripe makes it available |
| stripe_available | asset | funds Stripe holds for payout (moved from pending at settlement) |
| payouts_in_transit | asset | payouts Stripe has debited that the bank has not confirmed |
| bank | asset | money that arrived in the bank account |
| revenue | revenue | gross card payments (settlement currency, at the charge's rate) |
| refunds | contra-revenue | money given back (at the original charge's rate) |
| stripe_fees | expense | Stripe's processing, international and conversion fees |
| dispute_losses | expense | disputed amounts withdrawn (reinstated when a dispute is won) |
| dispute_fees | expense | Stripe's dispute fees (returned when a dispute is won) |
| fx_gain_loss | revenue/expense | conversion differences (refunds and disputes at a later rate) |
| connected_payable | liability | amounts owed to connected accounts (transfers settle it) |
| platform_fees | revenue | application fees earned from connected accounts |
"""

from __future__ import annotations

__all__ = ["ACCOUNTS", "KINDS", "STRIPE_BALANCE", "is_known"]

KINDS: dict[str, str] = {
    "stripe_pending": "asset",
    "stripe_available": "asset",
    "payouts_in_transit": "asset",
    "bank": "asset",
    "revenue": "revenue",
    "refunds": "contra_revenue",
    "stripe_fees": "expense",
    "dispute_losses": "expense",
    "dispute_fees": "expense",
    "fx_gain_loss": "revenue_expense",
    "connected_payable": "liability",
    "platform_fees": "revenue",
}
ACCOUNTS = frozenset(KINDS)
# The two accounts whose sum per currency must equal Stripe's balance (pending + available).
STRIPE_BALANCE = ("stripe_pending", "stripe_available")


def is_known(account: str) -> bool:
    return account in ACCOUNTS
