"""Authorisation expiry: cancel uncaptured payments before their hold lapses.

Stripe holds an authorisation about 7 days, counted on Stripe's clock from the charge's
`created` (kept as `authorized_at`). Every `interval_s` checkout asks Stripe's clock (see
adapters/stripe_clock.py) for the time and cancels what was authorised more than
`policy.auth_expiry_after_s` (default 6 days) ago; a payment held for review is resolved by
the review policy's default instead, and the review is flagged.
"""

from __future__ import annotations

import asyncio
import logging

from ..adapters.cases import CaseRepository
from ..adapters.repository import PaymentRepository
from ..adapters.stripe_clock import StripeClock
from ..domain.errors import PaymentStateError
from ..domain.payment import Status
from ..domain.reviews import SYSTEM, ReviewStatus
from .handlers import Checkout
from .reviews import ReviewDesk

__all__ = ["AuthorisationExpiry"]

log = logging.getLogger("checkout.expiry")


class AuthorisationExpiry:
    def __init__(
        self, checkout: Checkout, desk: ReviewDesk, clock: StripeClock, interval_s: float = 60.0
    ) -> None:
        self.checkout = checkout
        self.desk = desk
        self.clock = clock
        self.interval_s = interval_s

    async def run_once(self) -> int:
        now = await self.clock.now()
        cutoff = now - self.checkout.policy.auth_expiry_after_s
        async with self.checkout.sessions() as session:
            due = await PaymentRepository(session).authorised_before(cutoff)
        done = 0
        for p in due:
            try:
                review = None
                if p.review_id:
                    async with self.checkout.sessions() as session:
                        review = await CaseRepository(session).get_review(p.review_id)
                if review is not None and review.status is ReviewStatus.OPEN:
                    await self.desk.resolve_on_expiry(review)
                    fresh = await self.checkout.get_payment(p.id)
                    if fresh.status is Status.REQUIRES_CAPTURE:  # approved, caller captures
                        continue
                else:
                    await self.checkout.cancel_payment(SYSTEM, p.id, "abandoned", actor=SYSTEM)
                done += 1
                log.info("payment %s: authorisation expiring, resolved", p.id)
            except PaymentStateError as exc:
                log.warning("payment %s: expiry could not act: %s", p.id, exc)
        return done

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("authorisation expiry sweep failed; next one in %ss", self.interval_s)
            await asyncio.sleep(self.interval_s)
