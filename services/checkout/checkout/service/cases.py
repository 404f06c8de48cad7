"""Disputes, early fraud warnings and Radar reviews from Stripe's events, and the router
that sends every event of checkout's slice to the right use case (refunds: refund_sync.py).

Every handler re-reads the object from Stripe (its current state) or derives facts that only
ever turn on, so duplicate, late and shuffled events end in the same state as the ordered
stream, and each fact is published once (deterministic event ids on top).
"""

from __future__ import annotations

import logging
from typing import Any

from payplane.stripe_gateway import GatewayError, Lane

from ..adapters.cases import CaseRepository
from ..adapters.repository import PaymentRepository
from ..adapters.stripe_payments import DisputeSnapshot
from ..domain.disputes import Dispute
from ..domain.payment import Payment, Status
from ..domain.reviews import SYSTEM, ReviewReason
from . import events
from .handlers import Checkout
from .refund_sync import RefundSync
from .review_ops import close_review, open_review
from .reviews import ReviewDesk

__all__ = ["Cases"]

log = logging.getLogger("checkout.cases")


class Cases:
    def __init__(self, checkout: Checkout, desk: ReviewDesk) -> None:
        self.checkout = checkout
        self.desk = desk
        self.sessions = checkout.sessions
        self.outbox = checkout.outbox
        self.clock = checkout.clock
        self.refunds = RefundSync(checkout)

    async def apply_stripe_event(self, event: dict[str, Any]) -> None:
        """Route one Stripe event of checkout's slice."""
        obj = event.get("data", {}).get("object", {})
        kind = obj.get("object")
        if kind in ("payment_intent", "charge"):
            await self.checkout.apply_stripe_event(event)
            if event.get("type") == "charge.refunded":
                await self.refunds.apply_charge_refunded(obj)
        elif kind == "refund":
            await self.refunds.apply_refund_event(obj)
        elif kind == "dispute":
            await self.apply_dispute(str(obj["id"]))
        elif kind == "radar.early_fraud_warning":
            await self.apply_early_fraud_warning(str(obj["id"]))
        elif kind == "review":
            await self.apply_radar_review(obj)
        else:
            log.info("event %s (%s) is not checkout's; ignored", event.get("id"), event.get("type"))

    async def _payment(self, charge_id: str, intent_id: str) -> Payment | None:
        async with self.sessions() as session:
            repo = PaymentRepository(session)
            found = await repo.get_by_charge(charge_id) if charge_id else None
            if found is None and intent_id:
                found = await repo.get_by_intent(intent_id)
        if found is None and intent_id:
            found = await self.checkout.payment_for_intent(intent_id)
        return found

    # -- disputes -----------------------------------------------------------------------------
    async def apply_dispute(self, dispute_id: str) -> None:
        snap = await self.checkout.stripe.retrieve_dispute(dispute_id)
        payment = await self._payment(snap.charge_id, snap.payment_intent_id)

        async def apply(session: Any) -> None:
            cases = CaseRepository(session)
            d = await cases.get_dispute(snap.id)
            now = self.clock()
            facts: list[str] = []
            if d is None:
                d = Dispute(
                    id=snap.id,
                    payment_id=payment.id if payment else "",
                    stripe_charge_id=snap.charge_id,
                    amount=snap.amount,
                    currency=snap.currency,
                    reason=snap.reason,
                    status=snap.status,
                    evidence_due_by=snap.evidence_due_by,
                    opened_at=snap.created or now,
                    updated_at=now,
                )
                facts.append("opened")
                was_closed = False
                more = d.observe(snap.status, withdrawn=snap.withdrawn is not None,
                                 reinstated=snap.reinstated is not None,
                                 evidence_due_by=snap.evidence_due_by)  # fmt: skip
                await cases.add_dispute(d)
            else:
                was_closed = d.closed
                before = (d.status, d.funds_withdrawn, d.funds_reinstated, d.evidence_due_by)
                more = d.observe(snap.status, withdrawn=snap.withdrawn is not None,
                                 reinstated=snap.reinstated is not None,
                                 evidence_due_by=snap.evidence_due_by)  # fmt: skip
                if before == (d.status, d.funds_withdrawn, d.funds_reinstated, d.evidence_due_by):
                    return
                d.updated_at = now
                await cases.save_dispute(d)
            facts.extend(more)
            if d.closed and not was_closed:
                facts.append("closed")
            for fact in facts:
                await self._publish(session, d, fact, snap, now)
            if payment is not None and payment.review_id and "opened" in facts:
                review = await cases.get_review(payment.review_id)
                if review is not None and review.close("charge disputed", now):
                    await close_review(session, self.outbox, review, "closed", SYSTEM)

        await self.checkout._with_retry(apply)

    async def _publish(
        self, session: Any, d: Dispute, fact: str, snap: DisputeSnapshot, now: float
    ) -> None:
        settlement = {"funds_withdrawn": snap.withdrawn, "funds_reinstated": snap.reinstated}
        envelope = events.dispute_updated(d, fact, settlement.get(fact), now)
        await self.outbox.add(session, events.SUBJECTS[f"dispute.{fact}"], envelope)

    # -- early fraud warnings -----------------------------------------------------------------
    async def apply_early_fraud_warning(self, efw_id: str) -> None:
        """Policy: an actionable warning on a payment of at most `efw_auto_refund_max` is
        refunded in full (reason fraudulent) before it turns into a dispute; a larger one
        goes to review. Each warning is acted on once."""
        async with self.sessions() as session:
            if await CaseRepository(session).efw_seen(efw_id):
                return
        raw = await self.checkout.stripe._call(
            "radar.early_fraud_warnings.retrieve",
            lambda client, options: client.v1.radar.early_fraud_warnings.retrieve_async(
                efw_id, options=options
            ),
            None,
            Lane.BACKGROUND,
        )
        efw: dict[str, Any] = raw.to_dict() if hasattr(raw, "to_dict") else dict(raw)
        charge = efw.get("charge")
        charge_id = charge if isinstance(charge, str) else str((charge or {}).get("id") or "")
        intent = efw.get("payment_intent")
        intent_id = intent if isinstance(intent, str) else str((intent or {}).get("id") or "")
        payment = await self._payment(charge_id, intent_id)
        actionable = bool(efw.get("actionable"))
        action = "none"
        limit = self.checkout.policy.efw_auto_refund_max
        if payment is not None and actionable and payment.status is Status.SUCCEEDED:
            if 0 < payment.refundable <= limit:
                try:
                    await self.checkout.refund_payment(
                        SYSTEM, payment.id, 0, "fraudulent", refund_id=f"ref_efw_{efw_id[-20:]}"
                    )
                    action = "refunded"
                except GatewayError as exc:
                    log.warning("early fraud warning %s: refund failed: %s", efw_id, exc)
                    raise
            elif payment.refundable > limit:
                await self._review_for_warning(payment)
                action = "review"

        async def record(session: Any) -> None:
            cases = CaseRepository(session)
            if await cases.efw_seen(efw_id):
                return
            await cases.add_efw(
                efw_id, payment.id if payment else "", charge_id,
                str(efw.get("fraud_type") or ""), actionable, action, self.clock(),
            )  # fmt: skip

        await self.checkout._with_retry(record)

    async def _review_for_warning(self, payment: Payment) -> None:
        async def open_(session: Any) -> None:
            repo = PaymentRepository(session)
            p = await repo.get(payment.id)
            assert p is not None
            review = await open_review(
                session, self.outbox, p, ReviewReason.EARLY_FRAUD_WARNING, 0.0, "", self.clock()
            )
            if p.review_id != review.id:
                p.review_id = review.id
                await repo.save(p)

        await self.checkout._with_retry(open_)

    # -- Radar reviews ------------------------------------------------------------------------
    async def apply_radar_review(self, obj: dict[str, Any]) -> None:
        """review.opened links Radar's review to ours; review.closed goes to the audit trail."""
        payment = await self._payment(
            str(obj.get("charge") or ""), str(obj.get("payment_intent") or "")
        )
        if payment is None or not payment.review_id:
            return
        stripe_review_id = str(obj.get("id") or "")
        closed_reason = str(obj.get("closed_reason") or "")

        async def apply(session: Any) -> None:
            cases = CaseRepository(session)
            review = await cases.get_review(payment.review_id)
            if review is None:
                return
            if stripe_review_id and not review.stripe_review_id:
                review.stripe_review_id = stripe_review_id
                await cases.save_review(review)
            if not obj.get("open") and closed_reason:
                # Recorded, not acted on: our own reject (a refund) closes Radar's review too,
                # and a reviewer still owns the decision on ours.
                await cases.audit(
                    review.id, self.clock(), "stripe", "radar_review_closed", closed_reason
                )

        await self.checkout._with_retry(apply)
