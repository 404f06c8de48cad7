"""checkout's use cases.

CreatePayment and RefundPayment run in atomic phases (Brandur Leach): (1) the payment row
(or the refund's reservation against its payment) commits in ONE transaction with the
recovery point that records its id; (2) Stripe is asked with an idempotency key derived from
that id; (3) the outcome, the new state and its event are committed together. A crash, a
cancelled call or a deadline anywhere resumes at the last recovery point on the caller's
retry: Stripe sees the same key again and replays its answer, so nobody is charged or
refunded twice and no outcome is lost. What the caller never retries, the pending sweeper
(sweeper.py) resolves against Stripe with the same keys.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from payplane.events import Outbox
from payplane.idempotency import current
from payplane.stripe_gateway import InvalidRequest as StripeInvalidRequest
from payplane.stripe_gateway import NotFound as StripeNotFound
from payplane.stripe_gateway import deterministic_key

from ..adapters.cases import CaseRepository
from ..adapters.fraud_store import DecisionStore, StoredDecision
from ..adapters.repository import ConcurrentUpdate, PaymentRepository
from ..adapters.stripe_payments import IntentOutcome, RefundSnapshot, StripePayments
from ..domain.declines import BLOCKED_CODE, INTERRUPTED_CODE
from ..domain.errors import (
    InvalidPayment,
    PaymentNotFound,
    PaymentStateError,
    RefundNotAllowed,
)
from ..domain.payment import (
    CaptureMethod,
    Decline,
    Payment,
    Refund,
    Status,
    status_from_stripe,
    validate_new_payment,
)
from ..domain.reviews import SYSTEM, ReviewReason, ReviewStatus
from ..fraud.features import Signals
from ..fraud.model import DEFAULT_MODEL_PATH, Assessment, Decision, FraudModel, with_radar
from . import events
from .fraud import FraudScreen
from .refund_book import apply_refund, release_refund
from .review_ops import close_review, open_review

__all__ = ["Checkout", "NewPayment", "Policy"]

log = logging.getLogger("checkout")
T = TypeVar("T")
REFUND_REASONS = frozenset({"", "duplicate", "fraudulent", "requested_by_customer"})
CANCEL_REASONS = frozenset({"", "duplicate", "fraudulent", "requested_by_customer", "abandoned"})
_CANCELABLE = (Status.PENDING, Status.REQUIRES_ACTION, Status.REQUIRES_CAPTURE)


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
    ip_address: str = ""
    ip_country: str = ""
    email: str = ""
    shipping_country: str = ""
    customer_created_at: float | None = None
    confirm_later: bool = False


@dataclass(frozen=True)
class Policy:
    """What checkout does on its own (settings-driven; see settings.py)."""

    auth_expiry_after_s: float = 6 * 86_400  # cancel uncaptured authorisations this old
    efw_auto_refund_max: int = 10_000  # refund actionable warnings up to this (minor units)
    review_default_on_expiry: str = "reject"  # reject | approve
    # A payment or refund still pending this long after its last step is the sweeper's. It
    # must be well above the longest RPC deadline: the sweeper may fail a payment whose
    # intent Stripe does not have, and an attempt still asking Stripe must not race it.
    pending_sweep_after_s: float = 300.0


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _snapshot(p: Payment) -> dict[str, Any]:
    data = asdict(p)
    data.pop("version")
    data.pop("updated_at")
    return data


def signals_of(p: Payment) -> Signals:
    return Signals(
        amount=p.amount,
        currency=p.currency,
        customer_ref=p.customer_ref,
        card_fingerprint=p.card_fingerprint,
        card_country=p.card_country,
        ip_address=p.ip_address,
        ip_country=p.ip_country,
        email=p.email.lower(),
        shipping_country=p.shipping_country,
        customer_created_at=p.customer_created_at,
    )


class Checkout:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        stripe: StripePayments,
        outbox: Outbox,
        *,
        screen: FraudScreen | None = None,
        policy: Policy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sessions = sessions
        self.stripe = stripe
        self.outbox = outbox
        self.screen = screen or FraudScreen(FraudModel.load(DEFAULT_MODEL_PATH))
        self.policy = policy or Policy()
        self.clock = clock
        # Recording Stripe's answer, carried on after the caller's RPC was cancelled.
        self._finishing: set[asyncio.Task[Any]] = set()

    # -- commands -----------------------------------------------------------------------------
    async def create_payment(self, caller: str, cmd: NewPayment) -> Payment:
        problems = validate_new_payment(cmd.amount, cmd.currency, cmd.payment_method, cmd.metadata)
        if not cmd.customer_ref:
            problems.append("customer_ref: required")
        countries = (("ip_country", cmd.ip_country), ("shipping_country", cmd.shipping_country))
        for name, value in countries:
            if value and (len(value) != 2 or not value.isalpha()):
                problems.append(f"{name}: an ISO 3166-1 alpha-2 code")
        if problems:
            raise InvalidPayment("; ".join(problems))
        record = current()
        if record is not None and record.recovery_point is not None:
            payment_id = str(record.recovery_data["payment_id"])
            payment = await self._load(payment_id)
            if payment.status is not Status.PENDING or payment.stripe_payment_intent_id:
                return payment  # phase 3 committed before the crash: nothing left to do
            if not await self._hold_for_stripe(payment.id):
                return await self._load(payment.id)  # the sweeper resolved it meanwhile
        else:
            now = self.clock()
            card = await self._card(cmd.payment_method)
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
                card_fingerprint=card[0],
                card_country=card[1].upper(),
                ip_address=cmd.ip_address,
                ip_country=cmd.ip_country.upper(),
                email=cmd.email.lower(),
                shipping_country=cmd.shipping_country.upper(),
                customer_created_at=cmd.customer_created_at,
                confirm_later=cmd.confirm_later,
                caller=caller,
            )
            async with self.sessions.begin() as session:
                if not cmd.confirm_later:
                    await self._screen(session, payment, now)
                await PaymentRepository(session).add(
                    payment, caller, recheck_at=now + self.policy.pending_sweep_after_s
                )
                if payment.status is Status.FAILED:
                    await self.outbox.add(
                        session, events.SUBJECTS["payment.failed"], events.payment_failed(payment)
                    )
                if record is not None:  # the row and its recovery point commit together
                    await record.checkpoint(
                        "payment_created", {"payment_id": payment.id}, session=session
                    )
            if payment.status is Status.FAILED:
                return payment  # blocked: Stripe is never asked
        decision = Decision(payment.fraud_decision) if payment.fraud_decision else Decision.ALLOW
        key = deterministic_key("checkout", payment.id, "create_intent")
        outcome = await self.stripe.create_and_confirm(
            payment,
            key,
            cmd.return_url,
            manual_capture=decision is Decision.REVIEW,
            challenge=decision is Decision.CHALLENGE,
            confirm=not payment.confirm_later,
        )
        return await self._finish(self.apply_intent(payment.id, outcome))

    async def _hold_for_stripe(self, payment_id: str) -> bool:
        """Keep the sweeper off a pending payment while Stripe is asked for its intent."""
        until = self.clock() + self.policy.pending_sweep_after_s
        async with self.sessions.begin() as session:
            return await PaymentRepository(session).hold_for_stripe(payment_id, until)

    async def fail_interrupted(self, payment_id: str, claimed_until: float) -> Payment | None:
        """Fail a pending payment whose intent Stripe never created (the sweeper found none):
        nothing was charged. None when someone asked Stripe since the sweep's claim."""

        async def fail(session: AsyncSession) -> Payment | None:
            repo = PaymentRepository(session)
            if not await repo.seize_unasked(payment_id, claimed_until):
                return None
            p = await repo.get(payment_id)
            assert p is not None
            p.decline = Decline(
                code=INTERRUPTED_CODE,
                decline_code="",
                message="checkout was interrupted before Stripe was asked: nothing was charged",
            )
            p.observe(Status.FAILED)
            p.updated_at = self.clock()
            await repo.save(p)
            await self.outbox.add(
                session, events.SUBJECTS["payment.failed"], events.payment_failed(p)
            )
            return p

        failed = await self._with_retry(fail)
        if failed is not None:
            log.warning("payment %s: interrupted before Stripe had it; failed", payment_id)
        return failed

    async def _finish(self, step: Coroutine[Any, Any, T]) -> T:
        """Record what Stripe answered even if the caller's RPC is cancelled meanwhile: the
        answer is in hand, and dropping it would leave the row behind Stripe until a retry
        or the sweeper asks again. The step is a short transaction (and, for a Radar block,
        the cancel or refund that enforces it, which must not be dropped either)."""
        task = asyncio.ensure_future(step)
        self._finishing.add(task)
        task.add_done_callback(self._finished)
        return await asyncio.shield(task)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._finishing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.info(
                "recording Stripe's answer failed (a retry or the sweeper asks again): %s",
                task.exception(),
            )

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Wait (bounded) for answers still being recorded; at shutdown, before the engine."""
        if self._finishing:
            await asyncio.wait(set(self._finishing), timeout=timeout_s)

    async def confirm_payment(self, caller: str, payment_id: str, return_url: str) -> Payment:
        """Confirm a payment created with confirm_later: the fraud decision is taken now."""

        async def decide(session: AsyncSession) -> Payment:
            repo = PaymentRepository(session)
            p = await repo.get(payment_id)
            if p is None:
                raise PaymentNotFound(f"payment {payment_id} not found")
            if p.fraud_decision:
                return p  # decided already (a retry)
            if not p.confirm_later or p.status is not Status.PENDING:
                raise PaymentStateError(f"payment {payment_id} is not waiting for confirmation")
            if not p.stripe_payment_intent_id:
                raise PaymentStateError(f"payment {payment_id} has no Stripe PaymentIntent")
            now = self.clock()
            decision = await self._screen(session, p, now)
            p.updated_at = now
            await repo.save(p)
            if decision is Decision.BLOCK:
                await self.outbox.add(
                    session, events.SUBJECTS["payment.failed"], events.payment_failed(p)
                )
            return p

        p = await self._with_retry(decide)
        if p.status is not Status.PENDING:
            if p.status is Status.FAILED and p.stripe_payment_intent_id:
                key = deterministic_key("checkout", p.id, "block_cancel")
                try:
                    await self.stripe.cancel(p.stripe_payment_intent_id, "fraudulent", key)
                except StripeInvalidRequest:
                    log.info("intent of blocked payment %s could not be canceled", p.id)
            return p
        decision = Decision(p.fraud_decision)
        outcome = await self.stripe.confirm(
            p,
            deterministic_key("checkout", p.id, "confirm"),
            return_url,
            manual_capture=decision is Decision.REVIEW,
            challenge=decision is Decision.CHALLENGE,
        )
        return await self._finish(self.apply_intent(p.id, outcome))

    async def _card(self, payment_method: str) -> tuple[str, str]:
        try:
            card = await self.stripe.retrieve_card(payment_method)
        except (StripeNotFound, StripeInvalidRequest) as exc:
            raise InvalidPayment(f"payment_method: Stripe does not know it ({exc})") from exc
        return card.fingerprint, card.country

    async def _screen(self, session: AsyncSession, p: Payment, now: float) -> Decision:
        """Decide and record (live and shadow); a BLOCK fails the payment here and now."""
        signals = signals_of(p)
        screening = await self.screen.decide(session, signals, now)
        await self.screen.record(session, p.id, signals, screening, now)
        p.fraud_decision = screening.live.decision.value
        if screening.live.decision is Decision.BLOCK:
            p.status = Status.FAILED
            p.fraud_final_decision = Decision.BLOCK.value
            p.decline = Decline(
                code=BLOCKED_CODE,
                decline_code="",
                message="Blocked by payplane's fraud rules: "
                + (", ".join(screening.live.rules_fired) or f"score {screening.live.score:.3f}"),
            )
        return screening.live.decision

    async def capture_payment(
        self, caller: str, payment_id: str, amount: int, *, key: str = "", reviewed: bool = False
    ) -> Payment:
        if amount < 0:
            raise InvalidPayment("amount_minor: must not be negative (0 captures everything)")
        p = await self._load(payment_id)
        if p.status is Status.SUCCEEDED and reviewed:
            return p
        if p.status is not Status.REQUIRES_CAPTURE:
            raise PaymentStateError(
                f"payment {payment_id} is {p.status.value}: only requires_capture captures"
            )
        if amount > p.amount:
            raise InvalidPayment(f"amount_minor: at most the authorised {p.amount}")
        if p.review_id and not reviewed:
            async with self.sessions() as session:
                review = await CaseRepository(session).get_review(p.review_id)
            if review is not None and review.status is ReviewStatus.OPEN:
                raise PaymentStateError(
                    f"payment {payment_id} is held for review {review.id}: a reviewer decides"
                )
        record = current()
        if not key:
            key = (
                record.stripe_key("capture")
                if record is not None
                else deterministic_key("checkout", p.id, "capture", str(amount))
            )
        try:
            outcome = await self.stripe.capture(p.stripe_payment_intent_id, amount, key)
        except StripeInvalidRequest as exc:
            raise PaymentStateError(f"Stripe refused the capture: {exc}") from exc
        return await self.apply_intent(p.id, outcome)

    async def cancel_payment(
        self, caller: str, payment_id: str, reason: str, *, key: str = "", actor: str = ""
    ) -> Payment:
        if reason not in CANCEL_REASONS:
            raise InvalidPayment(
                "reason: one of duplicate, fraudulent, requested_by_customer, abandoned (or empty)"
            )
        p = await self._load(payment_id)
        if p.status is Status.CANCELED:
            return p
        if p.status not in _CANCELABLE:
            raise PaymentStateError(
                f"payment {payment_id} is {p.status.value}: only uncaptured payments cancel"
            )
        if not p.stripe_payment_intent_id:
            raise PaymentStateError(f"payment {payment_id} has no Stripe intent yet; retry")
        record = current()
        if not key:
            key = (
                record.stripe_key("cancel")
                if record is not None
                else deterministic_key("checkout", p.id, "cancel")
            )
        try:
            outcome = await self.stripe.cancel(p.stripe_payment_intent_id, reason, key)
        except StripeInvalidRequest as exc:
            fresh = await self.stripe.retrieve_intent(p.stripe_payment_intent_id)
            if fresh.status != "canceled":
                raise PaymentStateError(f"Stripe refused the cancel: {exc}") from exc
            outcome = fresh
        p = await self.apply_intent(p.id, outcome)
        if p.review_id and not actor:
            await self._close_review_of(p, f"payment canceled by {caller}: {reason}")
        return p

    async def _close_review_of(self, p: Payment, why: str) -> None:
        async def close(session: AsyncSession) -> None:
            cases = CaseRepository(session)
            review = await cases.get_review(p.review_id)
            if review is not None and review.close(why, self.clock()):
                await close_review(session, self.outbox, review, "closed", SYSTEM)

        await self._with_retry(close)

    async def refund_payment(
        self, caller: str, payment_id: str, amount: int, reason: str, *, refund_id: str = ""
    ) -> tuple[Payment, Refund]:
        """Refund; `refund_id` (internal callers) makes the refund idempotent by its id.

        The reservation (amount_refunded raised, a pending refund row) commits with the
        recovery point naming the refund, so a retry with the same key always finds it and
        asks Stripe with the same Stripe key.
        """
        if amount < 0:
            raise InvalidPayment("amount_minor: must not be negative (0 refunds all that remains)")
        if reason not in REFUND_REASONS:
            raise InvalidPayment(
                "reason: one of duplicate, fraudulent, requested_by_customer (or empty)"
            )
        record = None if refund_id else current()
        known_id = refund_id
        if record is not None and record.recovery_point is not None:
            known_id = str(record.recovery_data["refund_id"])
        found: Refund | None = None
        if known_id:
            async with self.sessions() as session:
                found = await PaymentRepository(session).get_refund(known_id)
        if found is not None:
            if found.stripe_refund_id or found.status != "pending":
                return await self._load(found.payment_id), found  # Stripe had it, or refused
            return await self.complete_refund(found)

        async def reserve(session: AsyncSession) -> tuple[Payment, Refund]:
            reserved = await self._reserve_refund(session, payment_id, amount, reason, refund_id)
            if record is not None:
                await record.checkpoint(
                    "refund_created", {"refund_id": reserved[1].id}, session=session
                )
            return reserved

        _, refund = await self._with_retry(reserve)
        return await self.complete_refund(refund)

    async def complete_refund(self, refund: Refund) -> tuple[Payment, Refund]:
        """Ask Stripe for a reserved refund (its key derives from the refund: a repeat is a
        replay) and record the answer; Stripe's refusal releases the reservation."""
        payment = await self._load(refund.payment_id)
        key = deterministic_key("checkout", refund.id, "refund")
        try:
            snap = await self.stripe.refund(payment, refund.amount, refund.reason, key, refund.id)
        except StripeInvalidRequest as exc:
            now = self.clock()
            await self._with_retry(lambda s: release_refund(s, refund.id, "refused_by_stripe", now))
            raise RefundNotAllowed(f"Stripe refused the refund: {exc}") from exc
        return await self._finish(self.record_refund(snap, payment.id, ours=refund.id))

    async def record_refund(
        self, snap: RefundSnapshot, payment_id: str, *, ours: str = ""
    ) -> tuple[Payment, Refund]:
        """Apply Stripe's view of a refund of `payment_id` (see refund_book.py); `ours`:
        checkout's refund it answers for, when known."""
        for _ in range(3):
            try:
                return await self._with_retry(
                    lambda s: apply_refund(s, self.outbox, snap, payment_id, self.clock(), ours)
                )
            except IntegrityError:
                continue  # imported concurrently by another event: apply to that row
        raise ConcurrentUpdate(f"refund {snap.refund_id}: gave up after conflicting imports")

    async def _reserve_refund(
        self, session: AsyncSession, payment_id: str, amount: int, reason: str, refund_id: str = ""
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
            id=refund_id or new_id("ref"),
            payment_id=payment_id,
            amount=wanted,
            currency=payment.currency,
            reason=reason,
            created_at=self.clock(),
        )
        payment.amount_refunded += wanted
        payment.updated_at = self.clock()
        await repo.save(payment)
        await repo.add_refund(
            refund, recheck_at=refund.created_at + self.policy.pending_sweep_after_s
        )
        return payment, refund

    # -- Stripe's view arriving -----------------------------------------------------------------
    async def apply_intent(self, payment_id: str, outcome: IntentOutcome) -> Payment:
        """Apply what Stripe says about the payment's intent; publish each fact once.

        Once the payment is authorised, Radar's verdict joins the fraud decision (once):
        elevated risk moves ALLOW/CHALLENGE to REVIEW (a review opens), highest risk or a
        Radar block is respected (the authorisation is canceled, or the charge refunded).
        """
        enforce: list[bool] = []

        async def apply(session: AsyncSession) -> Payment:
            enforce.clear()
            repo = PaymentRepository(session)
            p = await repo.get(payment_id)
            if p is None:
                raise PaymentNotFound(f"payment {payment_id} not found")
            before = _snapshot(p)
            if outcome.intent_id and not p.stripe_payment_intent_id:
                p.stripe_payment_intent_id = outcome.intent_id
            if outcome.charge_id:
                p.stripe_charge_id = outcome.charge_id
            if outcome.radar is not None:
                p.radar = outcome.radar
            if outcome.card_fingerprint and not p.card_fingerprint:
                p.card_fingerprint = outcome.card_fingerprint
                p.card_country = outcome.card_country.upper()
            status = status_from_stripe(outcome.status, had_error=outcome.decline is not None)
            if status in (Status.REQUIRES_CAPTURE, Status.SUCCEEDED) and p.authorized_at is None:
                p.authorized_at = outcome.authorized_at
            if status is Status.REQUIRES_ACTION and outcome.next_action is not None:
                p.next_action = outcome.next_action
            if status is Status.FAILED and outcome.decline is not None:
                p.decline = outcome.decline
            moved = p.observe(status)
            if moved and p.status is Status.SUCCEEDED:
                p.amount_captured = outcome.amount_received or p.amount
            if moved and p.status is Status.CANCELED:
                p.cancellation_reason = outcome.cancellation_reason
            review_reason = ""
            if (
                p.status in (Status.REQUIRES_CAPTURE, Status.SUCCEEDED)
                and not p.fraud_final_decision
            ):
                pre = Decision(p.fraud_decision) if p.fraud_decision else Decision.ALLOW
                radar = p.radar
                final = with_radar(
                    pre, radar.risk_level if radar else "", radar.type if radar else ""
                )
                p.fraud_final_decision = final.value
                await self._record_post_auth(session, p, final)
                if final is Decision.REVIEW:
                    review_reason = (
                        ReviewReason.FRAUD_SCORE if pre is Decision.REVIEW
                        else ReviewReason.RADAR_ELEVATED
                    )  # fmt: skip
                elif final is Decision.BLOCK:
                    enforce.append(True)
            if _snapshot(p) == before:
                return p  # stale or repeated news: nothing to write
            now = self.clock()
            p.updated_at = now
            if review_reason and not p.review_id:
                score = await self._live_score(session, p.id)
                review = await open_review(
                    session, self.outbox, p, review_reason, score, outcome.stripe_review_id, now
                )
                p.review_id = review.id
            await repo.save(p)
            if moved and p.status is Status.SUCCEEDED:
                await self.outbox.add(
                    session,
                    events.SUBJECTS["payment.succeeded"],
                    events.payment_succeeded(p, outcome.settlement),
                )
            elif moved and p.status is Status.FAILED:
                await DecisionStore(session).record_decline(p, now)
                await self.outbox.add(
                    session, events.SUBJECTS["payment.failed"], events.payment_failed(p)
                )
            return p

        p = await self._with_retry(apply)
        if enforce:
            p = await self._enforce_radar_block(p)
        return p

    async def _live_score(self, session: AsyncSession, payment_id: str) -> float:
        found = await DecisionStore(session).for_payment(payment_id)
        return found[0].assessment.score if found else 0.0

    async def _record_post_auth(self, session: AsyncSession, p: Payment, final: Decision) -> None:
        store = DecisionStore(session)
        pre = [d for d in await store.for_payment(p.id) if d.stage == "pre_auth"]
        if not pre:
            return
        a = pre[0].assessment
        radar = p.radar
        fired = a.rules_fired
        if radar is not None and final is not a.decision:
            fired = (*fired, f"radar:{radar.risk_level or radar.type}")
        post = Assessment(
            decision=final,
            score=a.score,
            logit=a.logit,
            bias=a.bias,
            contributions=a.contributions,
            rules_fired=fired,
            model_version=a.model_version,
            score_decision=a.score_decision,
        )
        await store.add(p.id, "live", "post_auth", post, pre[0].signals, self.clock(), radar)

    async def _enforce_radar_block(self, p: Payment) -> Payment:
        if p.status is Status.REQUIRES_CAPTURE:
            return await self.cancel_payment(
                SYSTEM, p.id, "fraudulent",
                key=deterministic_key("checkout", p.id, "radar_block_cancel"), actor=SYSTEM,
            )  # fmt: skip
        if p.status is Status.SUCCEEDED and p.refundable:
            paid, _ = await self.refund_payment(
                SYSTEM, p.id, 0, "fraudulent", refund_id=f"ref_radar_{p.id[4:]}"
            )
            return paid
        return p

    async def apply_stripe_event(self, event: dict[str, Any]) -> None:
        """A payment_intent.* or charge.* webhook: re-read the intent, move forward only.

        An intent checkout does not know (made elsewhere, or its row lost) is fetched from
        Stripe and imported rather than ignored.
        """
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
            await self.payment_for_intent(intent_id)
            return
        if payment.status.terminal:
            return
        outcome = await self.stripe.retrieve_intent(intent_id)
        await self.apply_intent(payment.id, outcome)

    async def payment_for_intent(self, intent_id: str) -> Payment:
        """The payment of a Stripe intent; fetched from Stripe and imported when unknown."""
        async with self.sessions() as session:
            known = await PaymentRepository(session).get_by_intent(intent_id)
        if known is not None:
            return known
        outcome = await self.stripe.retrieve_intent(intent_id)
        meta = outcome.metadata or {}
        payment_id = meta.get("payplane_payment_id") or new_id("pay")
        now = self.clock()
        imported = Payment(
            id=payment_id,
            amount=outcome.amount,
            currency=outcome.currency,
            customer_ref=meta.get("payplane_customer_ref", ""),
            payment_method="",
            capture_method=(
                CaptureMethod.MANUAL
                if outcome.capture_method == "manual"
                else CaptureMethod.AUTOMATIC
            ),
            metadata={k: v for k, v in meta.items() if not k.startswith("payplane_")},
            stripe_payment_intent_id=intent_id,
            created_at=now,
            updated_at=now,
        )
        try:
            async with self.sessions.begin() as session:
                repo = PaymentRepository(session)
                existing = await repo.get(payment_id)
                if existing is None:
                    await repo.add(imported, "stripe")
                    log.info("imported intent %s as payment %s", intent_id, payment_id)
        except IntegrityError:
            pass  # imported concurrently by another event
        return await self.apply_intent(payment_id, outcome)

    # -- queries --------------------------------------------------------------------------------
    async def get_payment(self, payment_id: str) -> Payment:
        return await self._load(payment_id)

    async def decisions_for(self, payment_id: str) -> list[StoredDecision]:
        """The live fraud decisions of a payment (pre_auth, then post_auth), oldest first."""
        async with self.sessions() as session:
            return await DecisionStore(session).for_payment(payment_id)

    async def list_payments(
        self,
        *,
        customer_ref: str,
        status: Status | None,
        page_size: int,
        page_token: str,
        caller: str | None = None,  # only this caller's payments (None: everyone's)
    ) -> tuple[list[Payment], str]:
        size = min(max(page_size or 20, 1), 100)
        async with self.sessions() as session:
            return await PaymentRepository(session).page(
                customer_ref=customer_ref,
                status=status,
                size=size,
                token=page_token,
                caller=caller,
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
