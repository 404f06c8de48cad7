"""The gRPC servicer: translate protobuf to use-case calls and back, nothing else."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from payplane.checkout.v1 import checkout_pb2, checkout_pb2_grpc
from payplane.common.v1 import common_pb2
from payplane.grpckit import PageTokens, current_caller, fields

from ..adapters.fraud_store import StoredDecision
from ..domain.declines import Advice, advice_for
from ..domain.errors import InvalidPayment
from ..domain.payment import CaptureMethod, Payment, Refund, Status
from ..domain.validation import MAX_CUSTOMER_REF, return_url_problems, validate_new_payment
from ..fraud.model import Decision
from ..service.handlers import Checkout, NewPayment
from ..service.timeline import payment_timeline
from .access import CANCEL, CAPTURE, CONFIRM, GET, LIST, REFUND, TIMELINE, OwnerRule

__all__ = ["CheckoutServicer", "assessment_to_proto", "payment_to_proto"]

Ctx = grpc.aio.ServicerContext[Any, Any]

_STATUS = {
    Status.PENDING: checkout_pb2.PAYMENT_STATUS_PENDING,
    Status.REQUIRES_ACTION: checkout_pb2.PAYMENT_STATUS_REQUIRES_ACTION,
    Status.PROCESSING: checkout_pb2.PAYMENT_STATUS_PROCESSING,
    Status.REQUIRES_CAPTURE: checkout_pb2.PAYMENT_STATUS_REQUIRES_CAPTURE,
    Status.SUCCEEDED: checkout_pb2.PAYMENT_STATUS_SUCCEEDED,
    Status.FAILED: checkout_pb2.PAYMENT_STATUS_FAILED,
    Status.CANCELED: checkout_pb2.PAYMENT_STATUS_CANCELED,
}
_STATUS_BACK = {v: k for k, v in _STATUS.items()}
_CAPTURE = {
    checkout_pb2.CAPTURE_METHOD_UNSPECIFIED: CaptureMethod.AUTOMATIC,
    checkout_pb2.CAPTURE_METHOD_AUTOMATIC: CaptureMethod.AUTOMATIC,
    checkout_pb2.CAPTURE_METHOD_MANUAL: CaptureMethod.MANUAL,
}
_ADVICE = {
    Advice.RETRY_LATER: checkout_pb2.RETRY_ADVICE_RETRY_LATER,
    Advice.MAYBE_LATER: checkout_pb2.RETRY_ADVICE_MAYBE_LATER,
    Advice.CUSTOMER_ACTION: checkout_pb2.RETRY_ADVICE_CUSTOMER_ACTION,
    Advice.NEVER: checkout_pb2.RETRY_ADVICE_NEVER,
}


def _ts(seconds: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


_DECISION: dict[Decision, checkout_pb2.FraudDecision] = {
    Decision.ALLOW: checkout_pb2.FRAUD_DECISION_ALLOW,
    Decision.CHALLENGE: checkout_pb2.FRAUD_DECISION_CHALLENGE,
    Decision.REVIEW: checkout_pb2.FRAUD_DECISION_REVIEW,
    Decision.BLOCK: checkout_pb2.FRAUD_DECISION_BLOCK,
}


def _decision(value: str) -> checkout_pb2.FraudDecision:
    return _DECISION[Decision(value)] if value else checkout_pb2.FRAUD_DECISION_UNSPECIFIED


def _money(amount: int, currency: str) -> common_pb2.Money:
    return common_pb2.Money(amount_minor=amount, currency=currency)


def assessment_to_proto(d: StoredDecision, final: str = "") -> checkout_pb2.FraudAssessment:
    a = d.assessment
    return checkout_pb2.FraudAssessment(
        decision=_DECISION[a.decision],
        score=a.score,
        bias=a.bias,
        features=[
            checkout_pb2.FeatureContribution(
                name=c.name, value=c.value, weight=c.weight, contribution=c.contribution
            )
            for c in a.contributions
        ],
        rules_fired=list(a.rules_fired),
        model_version=a.model_version,
        score_decision=_DECISION[a.score_decision],
        final_decision=_decision(final),
    )


def payment_to_proto(
    p: Payment, decisions: list[StoredDecision] | None = None, *, viewer: str | None = None
) -> checkout_pb2.Payment:
    """The payment as `viewer` may see it: the client_secret only to the caller who made it
    (it completes the payment in the customer's browser; nobody else needs it)."""
    msg = checkout_pb2.Payment(
        id=p.id,
        amount=_money(p.amount, p.currency),
        amount_refunded=_money(p.amount_refunded, p.currency),
        customer_ref=p.customer_ref,
        status=_STATUS[p.status],
        capture_method=(
            checkout_pb2.CAPTURE_METHOD_MANUAL
            if p.capture_method is CaptureMethod.MANUAL
            else checkout_pb2.CAPTURE_METHOD_AUTOMATIC
        ),
        description=p.description,
        metadata=p.metadata,
        stripe_payment_intent_id=p.stripe_payment_intent_id,
        stripe_charge_id=p.stripe_charge_id,
        created_at=_ts(p.created_at),
        updated_at=_ts(p.updated_at),
        amount_captured=_money(p.captured, p.currency),
        cancellation_reason=p.cancellation_reason,
        review_id=p.review_id,
    )
    pre = [d for d in decisions or [] if d.stage == "pre_auth"]
    if pre:
        msg.fraud.CopyFrom(assessment_to_proto(pre[0], p.fraud_final_decision))
    if p.radar is not None:
        msg.radar.CopyFrom(
            checkout_pb2.RadarOutcome(
                type=p.radar.type,
                risk_level=p.radar.risk_level,
                risk_score=p.radar.risk_score or 0,
                reason=p.radar.reason,
            )
        )
    if p.next_action is not None:
        msg.next_action.CopyFrom(
            checkout_pb2.NextAction(
                type=p.next_action.type,
                redirect_url=p.next_action.redirect_url,
                client_secret=(
                    p.next_action.client_secret if viewer is not None and viewer == p.caller else ""
                ),
            )
        )
    if p.decline is not None:
        msg.decline.CopyFrom(
            checkout_pb2.Decline(
                code=p.decline.code,
                decline_code=p.decline.decline_code,
                message=p.decline.message,
                advice=_ADVICE[advice_for(p.decline.decline_code, p.decline.code)],
            )
        )
    return msg


def refund_to_proto(r: Refund) -> checkout_pb2.Refund:
    return checkout_pb2.Refund(
        id=r.id,
        payment_id=r.payment_id,
        amount=_money(r.amount, r.currency),
        status=r.status,
        reason=r.reason,
        stripe_refund_id=r.stripe_refund_id,
        created_at=_ts(r.created_at),
    )


class CheckoutServicer(checkout_pb2_grpc.CheckoutServiceServicer):
    def __init__(
        self, checkout: Checkout, page_tokens: PageTokens, owners: OwnerRule | None = None
    ) -> None:
        self.checkout = checkout
        self.tokens = page_tokens
        self.owners = owners or OwnerRule({})

    async def _view(self, p: Payment, caller: str) -> checkout_pb2.Payment:
        return payment_to_proto(p, await self.checkout.decisions_for(p.id), viewer=caller)

    async def _owned(self, method: str, payment_id: str) -> tuple[str, Payment]:
        """The caller, and the payment if the caller may act on it with `method`."""
        caller = current_caller() or ""
        fields.object_id(payment_id, "payment_id")
        payment = await self.checkout.get_payment(payment_id)
        self.owners.check(method, caller, payment)
        return caller, payment

    async def CreatePayment(
        self, request: checkout_pb2.CreatePaymentRequest, context: Ctx
    ) -> checkout_pb2.Payment:
        if not request.HasField("amount"):
            raise InvalidPayment("amount: required (amount_minor and currency)")
        if request.capture_method not in _CAPTURE:
            raise InvalidPayment("capture_method: unknown value")
        created = fields.optional_time(request, "customer_created_at")
        cmd = NewPayment(
            amount=request.amount.amount_minor,
            currency=request.amount.currency.lower(),
            customer_ref=request.customer_ref,
            payment_method=request.payment_method,
            capture_method=_CAPTURE[request.capture_method],
            description=request.description,
            metadata=dict(request.metadata),
            return_url=request.return_url,
            ip_address=request.ip_address,
            ip_country=request.ip_country,
            email=request.email,
            shipping_country=request.shipping_country,
            customer_created_at=None if created is None else created.timestamp(),
            confirm_later=request.confirm_later,
        )
        problems = validate_new_payment(
            cmd.amount, cmd.currency, cmd.payment_method, cmd.metadata,
            customer_ref=cmd.customer_ref, description=cmd.description, email=cmd.email,
            ip_address=cmd.ip_address, ip_country=cmd.ip_country,
            shipping_country=cmd.shipping_country, return_url=cmd.return_url,
            customer_created_at=cmd.customer_created_at,
        )  # fmt: skip
        if problems:
            raise InvalidPayment("; ".join(problems))
        caller = current_caller() or ""
        payment = await self.checkout.create_payment(caller, cmd)
        return await self._view(payment, caller)

    async def GetPayment(
        self, request: checkout_pb2.GetPaymentRequest, context: Ctx
    ) -> checkout_pb2.Payment:
        caller, payment = await self._owned(GET, request.payment_id)
        return await self._view(payment, caller)

    async def ListPayments(
        self, request: checkout_pb2.ListPaymentsRequest, context: Ctx
    ) -> checkout_pb2.ListPaymentsResponse:
        status = None
        if request.status != checkout_pb2.PAYMENT_STATUS_UNSPECIFIED:
            if request.status not in _STATUS_BACK:
                raise InvalidPayment("status: unknown value")
            status = _STATUS_BACK[request.status]
        if request.page.page_size < 0:
            raise InvalidPayment("page.page_size: must not be negative")
        fields.text(request.customer_ref, "customer_ref", MAX_CUSTOMER_REF)
        caller = current_caller() or ""
        only = None if self.owners.across(LIST, caller) else caller
        scope = PageTokens.scope(LIST, only, request.customer_ref, request.status)
        items, cursor = await self.checkout.list_payments(
            customer_ref=request.customer_ref,
            status=status,
            page_size=request.page.page_size,
            page_token=self.tokens.open(scope, request.page.page_token),
            caller=only,
        )
        token = self.tokens.seal(scope, cursor)
        return checkout_pb2.ListPaymentsResponse(
            payments=[payment_to_proto(p, viewer=caller) for p in items],
            page=common_pb2.PageResponse(next_page_token=token, has_more=bool(token)),
        )

    async def RefundPayment(
        self, request: checkout_pb2.RefundPaymentRequest, context: Ctx
    ) -> checkout_pb2.Refund:
        caller, _ = await self._owned(REFUND, request.payment_id)
        _, refund = await self.checkout.refund_payment(
            caller, request.payment_id, request.amount_minor, request.reason
        )
        return refund_to_proto(refund)

    async def CapturePayment(
        self, request: checkout_pb2.CapturePaymentRequest, context: Ctx
    ) -> checkout_pb2.Payment:
        caller, _ = await self._owned(CAPTURE, request.payment_id)
        payment = await self.checkout.capture_payment(
            caller, request.payment_id, request.amount_minor
        )
        return await self._view(payment, caller)

    async def CancelPayment(
        self, request: checkout_pb2.CancelPaymentRequest, context: Ctx
    ) -> checkout_pb2.Payment:
        caller, _ = await self._owned(CANCEL, request.payment_id)
        payment = await self.checkout.cancel_payment(caller, request.payment_id, request.reason)
        return await self._view(payment, caller)

    async def ConfirmPayment(
        self, request: checkout_pb2.ConfirmPaymentRequest, context: Ctx
    ) -> checkout_pb2.Payment:
        problems = return_url_problems(request.return_url)
        if problems:
            raise InvalidPayment("; ".join(problems))
        caller, _ = await self._owned(CONFIRM, request.payment_id)
        payment = await self.checkout.confirm_payment(
            caller, request.payment_id, request.return_url
        )
        return await self._view(payment, caller)

    async def GetPaymentTimeline(
        self, request: checkout_pb2.GetPaymentRequest, context: Ctx
    ) -> checkout_pb2.PaymentTimeline:
        from .grpc_timeline import timeline_to_proto  # it builds on this module's translations

        await self._owned(TIMELINE, request.payment_id)
        return timeline_to_proto(await payment_timeline(self.checkout.sessions, request.payment_id))
