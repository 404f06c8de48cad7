"""checkout's use cases.

CreatePayment runs in atomic phases (Brandur Leach): (1) the payment row is committed and a
recovery point records its id; (2) Stripe is asked with an idempotency key derived from that
id; (3) the outcome, the payment's new state and its event are committed together. A crash
anywhere resumes at the last recovery point: Stripe sees the same key again and replays its
answer, so nobody is charged twice and no outcome is lost.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from payplane.events import Outbox
from payplane.idempotency import current
from payplane.stripe_gateway import InvalidRequest as StripeInvalidRequest
from payplane.stripe_gateway import deterministic_key

from ..adapters.repository import ConcurrentUpdate, PaymentRepository
from ..adapters.stripe_payments import IntentOutcome, StripePayments
from ..domain.errors import InvalidPayment, PaymentNotFound, RefundNotAllowed
from ..domain.payment import (
    CaptureMethod,
    Payment,
    Refund,
    Status,
    status_from_stripe,
    validate_new_payment,
)
from . import events

__all__ = ["Checkout", "NewPayment"]

log = logging.getLogger("checkout")
T = TypeVar("T")
REFUND_REASONS = frozenset({"", "duplicate", "fraudulent", "requested_by_customer"})


@dataclass(frozen=True)
class NewPayment:
    amount: int
    currency: str
    customer_ref: str
    payment_method: str
    capture_method: CaptureMethod = CaptureMethod.AUTOMATIC
    description: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    return_url: str = ""


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


class Checkout:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        stripe: StripePayments,
        outbox: Outbox,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sessions = sessions
        self.stripe = stripe
        self.outbox = outbox
        self.clock = clock

    # -- commands -----------------------------------------------------------------------------
    async def create_payment(self, caller: str, cmd: NewPayment) -> Payment:
        problems = validate_new_payment(cmd.amount, cmd.currency, cmd.payment_method, cmd.metadata)
        if not cmd.customer_ref:
            problems.append("customer_ref: required")
        if problems:
            raise InvalidPayment("; ".join(problems))
        record = current()
        if record is not None and record.recovery_point is not None:
            payment_id = str(record.recovery_data["payment_id"])
            payment = await self._load(payment_id)
            if payment.status is not Status.PENDING:
                return payment  # phase 3 committed before the crash: nothing left to do
        else:
            now = self.clock()
            payment = Payment(
                id=new_id("pay"),
                amount=cmd.amount,
                currency=cmd.currency,
                customer_ref=cmd.customer_ref,
                payment_method=cmd.payment_method,
                capture_method=cmd.capture_method,
                description=cmd.description,
                metadata=dict(cmd.metadata),
                created_at=now,
                updated_at=now,
            )
            async with self.sessions.begin() as session:
                await PaymentRepository(session).add(payment, caller)
            if record is not None:
                await record.checkpoint("payment_created", {"payment_id": payment.id})
        key = deterministic_key("checkout", payment.id, "create_intent")
        outcome = await self.stripe.create_and_confirm(payment, key, cmd.return_url)
        return await self.apply_intent(payment.id, outcome)

    async def refund_payment(
        self, caller: str, payment_id: str, amount: int, reason: str
    ) -> tuple[Payment, Refund]:
        if amount < 0:
            raise InvalidPayment("amount_minor: must not be negative (0 refunds all that remains)")
        if reason not in REFUND_REASONS:
            raise InvalidPayment(
                "reason: one of duplicate, fraudulent, requested_by_customer (or empty)"
            )
        record = current()
        if record is not None and record.recovery_point is not None:
            refund_id = str(record.recovery_data["refund_id"])
            async with self.sessions.begin() as session:
                repo = PaymentRepository(session)
                found = await repo.get_refund(refund_id)
                loaded = await repo.get(payment_id)
            if found is None or loaded is None:
                raise PaymentNotFound(f"payment {payment_id} not found")
            payment, refund = loaded, found
            if refund.status != "pending":
                return payment, refund
        else:
            payment, refund = await self._with_retry(
                lambda s: self._reserve_refund(s, payment_id, amount, reason)
            )
            if record is not None:
                await record.checkpoint("refund_created", {"refund_id": refund.id})
        key = deterministic_key("checkout", refund.id, "refund")
        try:
            outcome = await self.stripe.refund(payment, refund.amount, reason, key, refund.id)
        except StripeInvalidRequest as exc:
            await self._with_retry(lambda s: self._release_refund(s, payment_id, refund.id))
            raise RefundNotAllowed(f"Stripe refused the refund: {exc}") from exc

        async def finish(session: AsyncSession) -> tuple[Payment, Refund]:
            repo = PaymentRepository(session)
            p = await repo.get(payment_id)
            assert p is not None
            refund.status = outcome.status
            refund.stripe_refund_id = outcome.refund_id
            await repo.save_refund(refund)
            await self.outbox.add(
                session,
                events.SUBJECTS["payment.refunded"],
                events.payment_refunded(p, refund, outcome.settlement),
            )
            return p, refund

        return await self._with_retry(finish)

    async def _reserve_refund(
        self, session: AsyncSession, payment_id: str, amount: int, reason: str
    ) -> tuple[Payment, Refund]:
        """Count the refund against the payment before asking Stripe (no over-refund race)."""
        repo = PaymentRepository(session)
        payment = await repo.get(payment_id)
        if payment is None:
            raise PaymentNotFound(f"payment {payment_id} not found")
        if payment.status is not Status.SUCCEEDED:
            raise RefundNotAllowed(
                f"payment {payment_id} is {payment.status.value}: only succeeded payments refund"
            )
        remaining = payment.refundable
        if remaining == 0:
            raise RefundNotAllowed(f"payment {payment_id} is already fully refunded")
        wanted = amount or remaining
        if wanted > remaining:
            raise RefundNotAllowed(
                f"refund of {wanted} exceeds the {remaining} {payment.currency} that remains"
            )
        refund = Refund(
            id=new_id("ref"),
            payment_id=payment_id,
            amount=wanted,
            currency=payment.currency,
            reason=reason,
            created_at=self.clock(),
        )
        payment.amount_refunded += wanted
        payment.updated_at = self.clock()
        await repo.save(payment)
        await repo.add_refund(refund)
        return payment, refund

    async def _release_refund(self, session: AsyncSession, payment_id: str, refund_id: str) -> None:
        repo = PaymentRepository(session)
        payment = await repo.get(payment_id)
        refund = await repo.get_refund(refund_id)
        if payment is None or refund is None or refund.status != "pending":
            return
        refund.status = "failed"
        payment.amount_refunded -= refund.amount
        await repo.save(payment)
        await repo.save_refund(refund)

    # -- Stripe's view arriving -----------------------------------------------------------------
    async def apply_intent(self, payment_id: str, outcome: IntentOutcome) -> Payment:
        """Apply what Stripe says about the payment's intent; publish a fact once."""

        async def apply(session: AsyncSession) -> Payment:
            repo = PaymentRepository(session)
            p = await repo.get(payment_id)
            if p is None:
                raise PaymentNotFound(f"payment {payment_id} not found")
            if outcome.intent_id and not p.stripe_payment_intent_id:
                p.stripe_payment_intent_id = outcome.intent_id
            if outcome.charge_id:
                p.stripe_charge_id = outcome.charge_id
            status = status_from_stripe(outcome.status, had_error=outcome.decline is not None)
            if status is Status.REQUIRES_ACTION and outcome.next_action is not None:
                p.next_action = outcome.next_action
            if status is Status.FAILED and outcome.decline is not None:
                p.decline = outcome.decline
            before = p.status
            moved = p.observe(status)
            if not moved and before is p.status and p.next_action == outcome.next_action:
                return p  # stale or repeated news: nothing to write
            p.updated_at = self.clock()
            await repo.save(p)
            if moved and p.status is Status.SUCCEEDED:
                await self.outbox.add(
                    session,
                    events.SUBJECTS["payment.succeeded"],
                    events.payment_succeeded(p, outcome.settlement),
                )
            elif moved and p.status is Status.FAILED:
                await self.outbox.add(
                    session, events.SUBJECTS["payment.failed"], events.payment_failed(p)
                )
            return p

        return await self._with_retry(apply)

    async def apply_stripe_event(self, event: dict[str, Any]) -> None:
        """A payment_intent.* or charge.* webhook: re-read the intent, move forward only."""
        obj = event.get("data", {}).get("object", {})
        kind = obj.get("object")
        if kind == "payment_intent":
            intent_id = obj.get("id")
        elif kind == "charge":
            intent_id = obj.get("payment_intent")
        else:
            return
        if not intent_id:
            return
        payment_id = (
            (obj.get("metadata") or {}).get("payplane_payment_id")
            if kind == "payment_intent"
            else None
        )
        async with self.sessions.begin() as session:
            repo = PaymentRepository(session)
            payment = await (repo.get(payment_id) if payment_id else repo.get_by_intent(intent_id))
        if payment is None:
            log.info("event %s for an intent checkout does not know; ignored", event.get("id"))
            return
        if payment.status.terminal:
            return
        outcome = await self.stripe.retrieve_intent(intent_id)
        await self.apply_intent(payment.id, outcome)

    # -- queries --------------------------------------------------------------------------------
    async def get_payment(self, payment_id: str) -> Payment:
        return await self._load(payment_id)

    async def list_payments(
        self, *, customer_ref: str, status: Status | None, page_size: int, page_token: str
    ) -> tuple[list[Payment], str]:
        size = min(max(page_size or 20, 1), 100)
        async with self.sessions() as session:
            return await PaymentRepository(session).page(
                customer_ref=customer_ref, status=status, size=size, token=page_token
            )

    async def _load(self, payment_id: str) -> Payment:
        async with self.sessions() as session:
            payment = await PaymentRepository(session).get(payment_id)
        if payment is None:
            raise PaymentNotFound(f"payment {payment_id} not found")
        return payment

    async def _with_retry(self, step: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run one transaction; on an optimistic-lock conflict, reload and run it again."""
        for _ in range(10):
            try:
                async with self.sessions.begin() as session:
                    return await step(session)
            except ConcurrentUpdate:
                continue
        raise ConcurrentUpdate("gave up after 10 conflicting updates")
