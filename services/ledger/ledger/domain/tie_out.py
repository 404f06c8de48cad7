"""The tie-out (pure): per currency, opening + activity = closing, where closing is the
ledger's stripe_pending + stripe_available, compared with Stripe's balance per bucket."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

__all__ = ["balance_by_currency", "tie_out"]


def balance_by_currency(balance: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Stripe's `GET /v1/balance` as {currency: {"pending": n, "available": n}}."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: {"pending": 0, "available": 0})
    for bucket in ("pending", "available"):
        for item in balance.get(bucket) or []:
            out[str(item["currency"])][bucket] += int(item["amount"])
    return dict(out)


def tie_out(
    currency: str,
    *,
    opening: int,
    ledger_pending: int,
    ledger_available: int,
    stripe: Mapping[str, int] | None,
) -> dict[str, Any]:
    """One currency's line of a run's summary; `ties_out` when both buckets agree."""
    sb = stripe or {"pending": 0, "available": 0}
    closing = ledger_pending + ledger_available
    return {
        "currency": currency,
        "opening": opening,
        "activity": closing - opening,
        "closing": closing,
        "stripe_balance": sb["pending"] + sb["available"],
        "stripe_pending": sb["pending"],
        "stripe_available": sb["available"],
        "ledger_pending": ledger_pending,
        "ledger_available": ledger_available,
        "ties_out": ledger_pending == sb["pending"] and ledger_available == sb["available"],
    }
