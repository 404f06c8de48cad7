"""The ledger's read-only conversations with Stripe, on the gateway's BACKGROUND lane.

Pages come back as plain dicts (`to_dict()`), so nothing above this module sees the SDK.
The ledger's key is a restricted one: balance, payouts, charges, refunds and disputes, read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import stripe

from payplane.stripe_gateway import Gateway, Lane

__all__ = ["Page", "StripeReader"]

PAGE_SIZE = 100


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    has_more: bool


def _page(result: Any) -> Page:
    data = result.to_dict() if hasattr(result, "to_dict") else dict(result)
    return Page(list(data.get("data") or []), bool(data.get("has_more")))


class StripeReader:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def balance_transactions(
        self,
        *,
        created_gte: int | None = None,
        created_lt: int | None = None,
        starting_after: str | None = None,
        payout: str | None = None,
        expand_source: bool = True,
        limit: int = PAGE_SIZE,
    ) -> Page:
        params: dict[str, Any] = {"limit": limit}
        created: dict[str, int] = {}
        if created_gte is not None:
            created["gte"] = created_gte
        if created_lt is not None:
            created["lt"] = created_lt
        if created:
            params["created"] = created
        if starting_after:
            params["starting_after"] = starting_after
        if payout:
            params["payout"] = payout
        if expand_source:
            params["expand"] = ["data.source"]

        async def call(client: stripe.StripeClient, options: stripe.RequestOptions) -> Any:
            return await client.v1.balance_transactions.list_async(
                params=params,  # type: ignore[arg-type]
                options=options,
            )

        return _page(
            await self.gateway.call(
                "balance_transactions.list", call, idempotency_key=None, lane=Lane.BACKGROUND
            )
        )

    async def payouts(
        self, *, created_gte: int | None = None, starting_after: str | None = None
    ) -> Page:
        params: dict[str, Any] = {"limit": PAGE_SIZE}
        if created_gte is not None:
            params["created"] = {"gte": created_gte}
        if starting_after:
            params["starting_after"] = starting_after

        async def call(client: stripe.StripeClient, options: stripe.RequestOptions) -> Any:
            return await client.v1.payouts.list_async(
                params=params,  # type: ignore[arg-type]
                options=options,
            )

        return _page(
            await self.gateway.call(
                "payouts.list", call, idempotency_key=None, lane=Lane.BACKGROUND
            )
        )

    async def payout(self, payout_id: str) -> dict[str, Any]:
        async def call(client: stripe.StripeClient, options: stripe.RequestOptions) -> Any:
            return await client.v1.payouts.retrieve_async(payout_id, options=options)

        result = await self.gateway.call(
            "payouts.retrieve", call, idempotency_key=None, lane=Lane.BACKGROUND
        )
        out: dict[str, Any] = result.to_dict()
        return out

    async def balance(self) -> dict[str, Any]:
        async def call(client: stripe.StripeClient, options: stripe.RequestOptions) -> Any:
            return await client.v1.balance.retrieve_async(options=options)

        result = await self.gateway.call(
            "balance.retrieve", call, idempotency_key=None, lane=Lane.BACKGROUND
        )
        out: dict[str, Any] = result.to_dict()
        return out
