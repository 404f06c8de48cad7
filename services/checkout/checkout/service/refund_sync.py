"""Stripe's refund events applied to checkout's refunds.

`refund.created|updated|failed` and `charge.refund.updated` carry a refund; `charge.refunded`
carries the charge and its latest refunds. An event whose refund checkout already records
with the same status costs nothing; otherwise the refund is re-read from Stripe (its current
state, balance transactions expanded) and applied through refund_book.apply_refund: a
refund checkout made moves forward, a failed one gives its amount back, and one made at
Stripe directly is imported (its payment too, when checkout has never seen it).
"""

from __future__ import annotations

import logging
from typing import Any

from ..adapters.repository import PaymentRepository
from ..adapters.stripe_payments import RefundSnapshot
from .handlers import Checkout

__all__ = ["RefundSync"]

log = logging.getLogger("checkout.refunds")


class RefundSync:
    def __init__(self, checkout: Checkout) -> None:
        self.checkout = checkout
        self.sessions = checkout.sessions
        self.stripe = checkout.stripe

    async def apply_refund_event(self, obj: dict[str, Any]) -> None:
        """refund.* and charge.refund.updated: `obj` is the refund (a snapshot at event time)."""
        if await self._recorded_as(obj):
            return
        await self.apply(await self.stripe.retrieve_refund(str(obj["id"])))

    async def apply_charge_refunded(self, obj: dict[str, Any]) -> None:
        """charge.refunded: `obj` is the charge, with its first refunds."""
        listed = obj.get("refunds") or {}
        data = listed.get("data") or []
        complete = data and int(listed.get("total_count") or 0) <= len(data)
        if complete and all([await self._recorded_as(r) for r in data]):
            return
        for raw in await self.stripe.list_refunds(charge=str(obj["id"])):
            await self.apply(await self.stripe.refund_snapshot(raw))

    async def apply(self, snap: RefundSnapshot) -> None:
        payment_id = await self._payment_of(snap)
        if payment_id is None:
            log.warning("refund %s belongs to no payment checkout can find", snap.refund_id)
            return
        await self.checkout.record_refund(snap, payment_id)

    async def _payment_of(self, snap: RefundSnapshot) -> str | None:
        async with self.sessions() as session:
            repo = PaymentRepository(session)
            refund = await repo.get_refund_by_stripe(snap.refund_id)
            if refund is None and snap.payplane_refund_id:
                refund = await repo.get_refund(snap.payplane_refund_id)
            if refund is not None:
                return refund.payment_id
            payment = (
                await repo.get_by_intent(snap.payment_intent_id) if snap.payment_intent_id else None
            )
            if payment is None and snap.charge_id:
                payment = await repo.get_by_charge(snap.charge_id)
        if payment is None and snap.payment_intent_id:
            payment = await self.checkout.payment_for_intent(snap.payment_intent_id)
        return payment.id if payment is not None else None

    async def _recorded_as(self, obj: Any) -> bool:
        """Whether checkout already records this refund with this status."""
        if not isinstance(obj, dict) or not obj.get("id"):
            return False
        async with self.sessions() as session:
            refund = await PaymentRepository(session).get_refund_by_stripe(str(obj["id"]))
        return refund is not None and refund.status == obj.get("status")
