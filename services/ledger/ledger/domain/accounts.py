"""The chart of accounts (one set per currency; a balance is per account and currency).

Signs: every posting is signed minor units, debit positive, credit negative. Asset and
expense accounts carry debit balances; revenue and liability accounts credit balances.

| account | kind | what moves it |
| --- | --- | --- |
| stripe_pending | asset | card payments' net until Stripe makes the funds available |
| stripe_available | asset | funds Stripe holds for payout |
| payouts_in_transit | asset | payouts on their way to the bank |
| bank | asset | money that arrived |
| revenue | revenue | gross card payments (settlement currency) |
| refunds | contra-revenue | money given back |
| stripe_fees | expense | Stripe's processing fees |
| dispute_losses | expense | disputed amounts lost |
| dispute_fees | expense | Stripe's dispute fees |
| fx_gain_loss | revenue/expense | conversion differences |
| connected_payable | liability | amounts owed to connected accounts |
| platform_fees | revenue | application fees earned |
"""

from __future__ import annotations

__all__ = ["ACCOUNTS", "is_known"]

ACCOUNTS = frozenset(
    {
        "stripe_pending",
        "stripe_available",
        "payouts_in_transit",
        "bank",
        "revenue",
        "refunds",
        "stripe_fees",
        "dispute_losses",
        "dispute_fees",
        "fx_gain_loss",
        "connected_payable",
        "platform_fees",
    }
)


def is_known(account: str) -> bool:
    return account in ACCOUNTS
