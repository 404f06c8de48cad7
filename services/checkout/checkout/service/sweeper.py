"""The pending sweeper: payments and refunds whose caller never came back.

A payment or refund stays pending when the attempt that made it died, was cancelled or ran
out of time and its caller never retried with the same key. Every `interval_s` the sweeper
takes those whose `recheck_at` has come (policy.pending_sweep_after_s after their last
step) and settles them against Stripe, with the same Stripe idempotency keys the attempt used:

- A refund Stripe has (its id is known, or a refund with metadata `payplane_refund_id` is
  listed on the payment) is recorded as Stripe says. A refund Stripe does not have is
  COMPLETED with the same key: the caller asked for it and the amount is already reserved;
  completing it cannot refund twice (the key, and the listing for a key Stripe has pruned).
  Only Stripe's refusal (the charge was disputed meanwhile, say) releases the reservation.
- A payment with an intent is brought up to date from it. A payment whose intent Stripe does
  not have (none listed with metadata `payplane_payment_id` since it was created) is FAILED
  with code interrupted_before_stripe: nothing was charged, and creating the intent now
  could charge a customer whose checkout already gave up and tried again. A resumed
  CreatePayment that asks Stripe after the sweep's claim wins: the failure is not written.

Replicas share the work through the database: a row is claimed by moving its `recheck_at`
forward in one conditional UPDATE, so one replica handles it, and a claim that lapses (the
replica died) is taken again later.
"""

from __future__ import annotations

import asyncio
import logging

from ..adapters.repository import PaymentRepository
from ..adapters.stripe_clock import StripeClock
from ..domain.errors import RefundNotAllowed
from ..domain.payment import Payment, Refund
from .handlers import Checkout
from .refund_sync import RefundSync

__all__ = ["PendingSweeper"]

log = logging.getLogger("checkout.sweeper")
# How far before a payment's creation (on Stripe's clock) its intent is looked for: clocks
# drift, and an intent is stamped when Stripe ran the request.
_LISTING_SLACK_S = 600


class PendingSweeper:
    def __init__(
        self, checkout: Checkout, stripe_clock: StripeClock, interval_s: float = 30.0
    ) -> None:
        self.checkout = checkout
        self.refunds = RefundSync(checkout)
        self.stripe = checkout.stripe
        self.stripe_clock = stripe_clock
        self.interval_s = interval_s

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("pending sweep failed; next one in %ss", self.interval_s)
            await asyncio.sleep(self.interval_s)

    async def run_once(self) -> tuple[int, int]:
        """One sweep; returns how many refunds and payments it settled."""
        return await self.sweep_refunds(), await self.sweep_payments()

    # -- refunds --------------------------------------------------------------------------------
    async def sweep_refunds(self) -> int:
        settled = 0
        for refund in await self._claimed_refunds():
            try:
                await self._settle_refund(refund)
                settled += 1
            except Exception as exc:  # this one waits for the next sweep; the others go on
                log.warning("refund %s: sweep could not settle it: %s", refund.id, exc)
        return settled

    async def _claimed_refunds(self) -> list[Refund]:
        now = self.checkout.clock()
        until = now + self.checkout.policy.pending_sweep_after_s
        stale_before = now - self.checkout.policy.pending_sweep_after_s
        async with self.checkout.sessions() as session:
            due = await PaymentRepository(session).refunds_due(now, stale_before)
        claimed = []
        for refund in due:
            async with self.checkout.sessions.begin() as session:
                if await PaymentRepository(session).claim_refund(
                    refund.id, now, stale_before, until
                ):
                    claimed.append(refund)
        return claimed

    async def _settle_refund(self, refund: Refund) -> None:
        if refund.stripe_refund_id:  # Stripe has it, still open: webhooks may have been lost
            await self.refunds.apply(await self.stripe.retrieve_refund(refund.stripe_refund_id))
            return
        payment = await self.checkout.get_payment(refund.payment_id)
        listed = (
            await self.stripe.list_refunds(
                payment_intent=payment.stripe_payment_intent_id, charge=payment.stripe_charge_id
            )
            if payment.stripe_payment_intent_id or payment.stripe_charge_id
            else []
        )
        for raw in listed:
            snap = await self.stripe.refund_snapshot(raw)
            if snap.payplane_refund_id == refund.id:
                log.info("refund %s: Stripe had it (%s); recorded", refund.id, snap.refund_id)
                await self.checkout.record_refund(snap, payment.id, ours=refund.id)
                return
        try:
            await self.checkout.complete_refund(refund)
            log.info("refund %s: Stripe never had it; completed with its key", refund.id)
        except RefundNotAllowed as exc:
            log.warning("refund %s: released, %s", refund.id, exc)

    # -- payments -------------------------------------------------------------------------------
    async def sweep_payments(self) -> int:
        claimed = await self._claimed_payments()
        settled = 0
        orphans: dict[str, tuple[Payment, float]] = {}
        for payment, until in claimed:
            if not payment.stripe_payment_intent_id:
                orphans[payment.id] = (payment, until)
                continue
            try:
                outcome = await self.stripe.retrieve_intent(payment.stripe_payment_intent_id)
                await self.checkout.apply_intent(payment.id, outcome)
                settled += 1
            except Exception as exc:
                log.warning("payment %s: sweep could not settle it: %s", payment.id, exc)
        if orphans:
            settled += await self._settle_orphans(orphans)
        return settled

    async def _claimed_payments(self) -> list[tuple[Payment, float]]:
        now = self.checkout.clock()
        until = now + self.checkout.policy.pending_sweep_after_s
        stale_before = now - self.checkout.policy.pending_sweep_after_s
        async with self.checkout.sessions() as session:
            due = await PaymentRepository(session).pending_due(now, stale_before)
        claimed = []
        for payment in due:
            async with self.checkout.sessions.begin() as session:
                if await PaymentRepository(session).claim_pending(
                    payment.id, now, stale_before, until
                ):
                    claimed.append((payment, until))
        return claimed

    async def _settle_orphans(self, orphans: dict[str, tuple[Payment, float]]) -> int:
        """Payments with no intent id: find their intents at Stripe, or fail them."""
        oldest = min(p.created_at for p, _ in orphans.values())
        stripe_now = await self.stripe_clock.now()
        since = int(stripe_now - (self.checkout.clock() - oldest) - _LISTING_SLACK_S)
        found = await self.stripe.find_intents(set(orphans), since)
        settled = 0
        for payment_id, (_, until) in orphans.items():
            try:
                outcome = found.get(payment_id)
                if outcome is not None:
                    log.info("payment %s: Stripe had its intent %s", payment_id, outcome.intent_id)
                    await self.checkout.apply_intent(payment_id, outcome)
                elif await self.checkout.fail_interrupted(payment_id, until) is None:
                    continue  # a retry asked Stripe after our claim: it settles the payment
                settled += 1
            except Exception as exc:
                log.warning("payment %s: sweep could not settle it: %s", payment_id, exc)
        return settled
