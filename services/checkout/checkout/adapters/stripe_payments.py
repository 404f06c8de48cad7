"""checkout's conversations with Stripe, through the service's gateway.

Translates between Stripe objects and checkout's domain: a PaymentIntent becomes an
`IntentOutcome`, a card decline is an outcome (not an exception), and the settlement is
read from the charge's balance transaction (expanded in the same call).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from payplane.stripe_gateway import CardDeclined, Gateway, Lane, StripeUnavailable

from ..domain.errors import StripeUnreachable
from ..domain.payment import Decline, NextAction, Payment, Settlement

__all__ = ["IntentOutcome", "RefundOutcome", "StripePayments", "settlement_from"]

_EXPAND = ["latest_charge.balance_transaction"]


@dataclass(frozen=True)
class IntentOutcome:
    intent_id: str
    status: str  # the PaymentIntent's status
    charge_id: str = ""
    next_action: NextAction | None = None
    decline: Decline | None = None
    settlement: Settlement | None = None


@dataclass(frozen=True)
class RefundOutcome:
    refund_id: str
    status: str
    settlement: Settlement | None


def _get(obj: Any, key: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(key)
    return obj.get(key) if hasattr(obj, "get") else getattr(obj, key, None)


def settlement_from(bt: Any) -> Settlement | None:
    """A balance transaction (expanded object) as a Settlement; None if only an id."""
    if bt is None or isinstance(bt, str):
        return None
    rate = _get(bt, "exchange_rate")
    return Settlement(
        balance_transaction_id=str(_get(bt, "id")),
        currency=str(_get(bt, "currency")),
        gross=int(_get(bt, "amount")),
        fee=int(_get(bt, "fee")),
        net=int(_get(bt, "net")),
        exchange_rate="" if rate is None else repr(float(rate)),
        available_on=int(_get(bt, "available_on") or 0),
    )


def outcome_from_intent(intent: Any) -> IntentOutcome:
    charge = _get(intent, "latest_charge")
    charge_id = charge if isinstance(charge, str) else str(_get(charge, "id") or "")
    settlement = (
        None if isinstance(charge, str) else settlement_from(_get(charge, "balance_transaction"))
    )
    next_action = None
    raw_action = _get(intent, "next_action")
    if raw_action:
        redirect = _get(raw_action, "redirect_to_url")
        next_action = NextAction(
            type=str(_get(raw_action, "type") or ""),
            redirect_url=str(_get(redirect, "url") or "") if redirect else "",
            client_secret=str(_get(intent, "client_secret") or ""),
        )
    decline = None
    error = _get(intent, "last_payment_error")
    if error:
        decline = Decline(
            code=str(_get(error, "code") or ""),
            decline_code=str(_get(error, "decline_code") or ""),
            message=str(_get(error, "message") or ""),
        )
    return IntentOutcome(
        intent_id=str(_get(intent, "id")),
        status=str(_get(intent, "status")),
        charge_id=charge_id or "",
        next_action=next_action,
        decline=decline,
        settlement=settlement,
    )


class StripePayments:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def create_and_confirm(
        self, payment: Payment, idempotency_key: str, return_url: str = ""
    ) -> IntentOutcome:
        params: dict[str, Any] = {
            "amount": payment.amount,
            "currency": payment.currency,
            "payment_method": payment.payment_method,
            "confirm": True,
            "capture_method": payment.capture_method.value,
            "metadata": {
                **payment.metadata,
                "payplane_payment_id": payment.id,
                "payplane_customer_ref": payment.customer_ref,
            },
            "payment_method_types": ["card"],
            "expand": _EXPAND,
        }
        if payment.description:
            params["description"] = payment.description
        if return_url:
            params["return_url"] = return_url
        try:
            intent = await self.gateway.call(
                "payment_intents.create",
                lambda client, options: client.v1.payment_intents.create_async(
                    params=params,  # type: ignore[arg-type]
                    options=options,
                ),
                idempotency_key=idempotency_key,
                lane=Lane.INTERACTIVE,
            )
        except CardDeclined as exc:
            return IntentOutcome(
                intent_id=exc.payment_intent_id or "",
                status="requires_payment_method",
                charge_id=exc.charge_id or "",
                decline=Decline(
                    code=exc.code or "card_declined",
                    decline_code=exc.decline_code or "",
                    message=str(exc),
                ),
            )
        except StripeUnavailable as exc:
            raise StripeUnreachable(
                "Stripe did not answer; retry with the same idempotency key"
            ) from exc
        return outcome_from_intent(intent)

    async def retrieve_intent(self, intent_id: str) -> IntentOutcome:
        try:
            intent = await self.gateway.call(
                "payment_intents.retrieve",
                lambda client, options: client.v1.payment_intents.retrieve_async(
                    intent_id,
                    params={"expand": _EXPAND},
                    options=options,
                ),
                idempotency_key=None,
                lane=Lane.BACKGROUND,
            )
        except StripeUnavailable as exc:
            raise StripeUnreachable("Stripe did not answer") from exc
        return outcome_from_intent(intent)

    async def refund(
        self, payment: Payment, amount: int, reason: str, idempotency_key: str, refund_id: str
    ) -> RefundOutcome:
        params: dict[str, Any] = {
            "payment_intent": payment.stripe_payment_intent_id,
            "amount": amount,
            "metadata": {"payplane_payment_id": payment.id, "payplane_refund_id": refund_id},
            "expand": ["balance_transaction"],
        }
        if reason:
            params["reason"] = reason
        try:
            refund = await self.gateway.call(
                "refunds.create",
                lambda client, options: client.v1.refunds.create_async(
                    params=params,  # type: ignore[arg-type]
                    options=options,
                ),
                idempotency_key=idempotency_key,
                lane=Lane.REFUNDS,
            )
        except StripeUnavailable as exc:
            raise StripeUnreachable(
                "Stripe did not answer; retry with the same idempotency key"
            ) from exc
        return RefundOutcome(
            refund_id=str(_get(refund, "id")),
            status=str(_get(refund, "status")),
            settlement=settlement_from(_get(refund, "balance_transaction")),
        )
