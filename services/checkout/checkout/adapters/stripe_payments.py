"""checkout's conversations with Stripe, through the service's gateway.

Translates between Stripe objects and checkout's domain: a PaymentIntent becomes an
`IntentOutcome`, a card decline is an outcome (not an exception), and the settlement is
read from the charge's balance transaction (expanded in the same call).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from payplane.stripe_gateway import (
    CardDeclined,
    Gateway,
    GatewayError,
    InvalidRequest,
    Lane,
    StripeUnavailable,
)

from ..domain.errors import PaymentStateError, StripeUnreachable
from ..domain.payment import Decline, NextAction, Payment, RadarOutcome, Settlement

__all__ = [
    "CardInfo",
    "DisputeSnapshot",
    "IntentOutcome",
    "RefundSnapshot",
    "StripePayments",
    "refund_from",
    "settlement_from",
]

_EXPAND = ["latest_charge.balance_transaction"]


@dataclass(frozen=True)
class IntentOutcome:
    intent_id: str
    status: str  # the PaymentIntent's status
    charge_id: str = ""
    next_action: NextAction | None = None
    decline: Decline | None = None
    settlement: Settlement | None = None
    amount: int = 0
    currency: str = ""
    amount_received: int = 0
    capture_method: str = ""
    cancellation_reason: str = ""
    authorized_at: float | None = None  # the latest charge's `created` (Stripe's clock)
    radar: RadarOutcome | None = None
    card_fingerprint: str = ""
    card_country: str = ""
    metadata: dict[str, str] | None = None
    stripe_review_id: str = ""


@dataclass(frozen=True)
class CardInfo:
    fingerprint: str
    country: str


@dataclass(frozen=True)
class DisputeSnapshot:
    id: str
    charge_id: str
    payment_intent_id: str
    amount: int
    currency: str
    reason: str
    status: str
    evidence_due_by: float | None
    created: float
    withdrawn: Settlement | None  # the `adjustment` / dispute balance transaction
    reinstated: Settlement | None  # the `adjustment` / dispute_reversal one


@dataclass(frozen=True)
class RefundSnapshot:
    """A Stripe Refund as checkout needs it (its balance transactions expanded)."""

    refund_id: str  # re_...
    status: str  # pending | requires_action | succeeded | failed | canceled
    amount: int
    currency: str
    payment_intent_id: str
    charge_id: str
    reason: str
    settlement: Settlement | None  # the refund's balance transaction (funds leaving)
    payplane_refund_id: str = ""  # metadata: checkout's own id, when checkout made it
    failure_reason: str = ""
    # When Stripe failed or canceled it: the balance transaction giving the funds back.
    failure_settlement: Settlement | None = None
    failure_balance_transaction_id: str = ""
    created: float = 0.0


def refund_from(obj: Any, failure_bt: Any = None) -> RefundSnapshot:
    pi = _get(obj, "payment_intent")
    charge = _get(obj, "charge")
    fbt = failure_bt if failure_bt is not None else _get(obj, "failure_balance_transaction")
    metadata = _plain(_get(obj, "metadata"))
    return RefundSnapshot(
        refund_id=str(_get(obj, "id")),
        status=str(_get(obj, "status") or "pending"),
        amount=int(_get(obj, "amount") or 0),
        currency=str(_get(obj, "currency") or ""),
        payment_intent_id=pi if isinstance(pi, str) else str(_get(pi, "id") or ""),
        charge_id=charge if isinstance(charge, str) else str(_get(charge, "id") or ""),
        reason=str(_get(obj, "reason") or ""),
        settlement=settlement_from(_get(obj, "balance_transaction")),
        payplane_refund_id=metadata.get("payplane_refund_id", ""),
        failure_reason=str(_get(obj, "failure_reason") or ""),
        failure_settlement=settlement_from(fbt),
        failure_balance_transaction_id=(
            fbt if isinstance(fbt, str) else str(_get(fbt, "id") or "") if fbt else ""
        ),
        created=float(_get(obj, "created") or 0),
    )


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


def _radar(charge: Any) -> RadarOutcome | None:
    outcome = _get(charge, "outcome")
    if not outcome:
        return None
    score = _get(outcome, "risk_score")
    return RadarOutcome(
        type=str(_get(outcome, "type") or ""),
        risk_level=str(_get(outcome, "risk_level") or ""),
        risk_score=None if score is None else int(score),
        reason=str(_get(outcome, "reason") or ""),
    )


def outcome_from_intent(intent: Any) -> IntentOutcome:
    charge = _get(intent, "latest_charge")
    charge_id = charge if isinstance(charge, str) else str(_get(charge, "id") or "")
    expanded = charge is not None and not isinstance(charge, str)
    settlement = settlement_from(_get(charge, "balance_transaction")) if expanded else None
    card = _get(_get(charge, "payment_method_details"), "card") if expanded else None
    created = _get(charge, "created") if expanded else None
    review = _get(intent, "review")
    metadata = _get(intent, "metadata")
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
        amount=int(_get(intent, "amount") or 0),
        currency=str(_get(intent, "currency") or ""),
        amount_received=int(_get(intent, "amount_received") or 0),
        capture_method=str(_get(intent, "capture_method") or ""),
        cancellation_reason=str(_get(intent, "cancellation_reason") or ""),
        authorized_at=float(created) if created else None,
        radar=_radar(charge) if expanded else None,
        card_fingerprint=str(_get(card, "fingerprint") or "") if card else "",
        card_country=str(_get(card, "country") or "") if card else "",
        metadata=_plain(metadata),
        stripe_review_id=(review if isinstance(review, str) else str(_get(review, "id") or ""))
        if review
        else "",
    )


def _plain(obj: Any) -> dict[str, str]:
    if not obj:
        return {}
    data = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    return {str(k): str(v) for k, v in data.items()}


def _bt_settlement(bts: Any, category: str) -> Settlement | None:
    for bt in bts or []:
        if not isinstance(bt, str) and _get(bt, "reporting_category") == category:
            return settlement_from(bt)
    return None


def dispute_from(obj: Any) -> DisputeSnapshot:
    evidence = _get(obj, "evidence_details")
    due = _get(evidence, "due_by") if evidence else None
    bts = _get(obj, "balance_transactions")
    charge = _get(obj, "charge")
    pi = _get(obj, "payment_intent")
    return DisputeSnapshot(
        id=str(_get(obj, "id")),
        charge_id=charge if isinstance(charge, str) else str(_get(charge, "id") or ""),
        payment_intent_id=pi if isinstance(pi, str) else str(_get(pi, "id") or ""),
        amount=int(_get(obj, "amount") or 0),
        currency=str(_get(obj, "currency") or ""),
        reason=str(_get(obj, "reason") or ""),
        status=str(_get(obj, "status") or ""),
        evidence_due_by=float(due) if due else None,
        created=float(_get(obj, "created") or 0),
        withdrawn=_bt_settlement(bts, "dispute"),
        reinstated=_bt_settlement(bts, "dispute_reversal"),
    )


def _intent_id(intent_id: str) -> str:
    """Never address Stripe with an empty id (POST /v1/payment_intents//confirm)."""
    if not intent_id:
        raise PaymentStateError("the payment has no Stripe PaymentIntent")
    return intent_id


class StripePayments:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def _call(self, operation: str, fn: Any, key: str | None, lane: Lane) -> Any:
        try:
            return await self.gateway.call(operation, fn, idempotency_key=key, lane=lane)
        except StripeUnavailable as exc:
            raise StripeUnreachable(
                "Stripe did not answer; retry with the same idempotency key"
            ) from exc

    async def retrieve_card(self, payment_method: str) -> CardInfo:
        """The card's fingerprint and country (one read on the interactive lane)."""
        pm = await self._call(
            "payment_methods.retrieve",
            lambda client, options: client.v1.payment_methods.retrieve_async(
                payment_method, options=options
            ),
            None,
            Lane.INTERACTIVE,
        )
        card = _get(pm, "card")
        return CardInfo(
            fingerprint=str(_get(card, "fingerprint") or "") if card else "",
            country=str(_get(card, "country") or "") if card else "",
        )

    async def create_and_confirm(
        self,
        payment: Payment,
        idempotency_key: str,
        return_url: str = "",
        *,
        manual_capture: bool = False,
        challenge: bool = False,
        confirm: bool = True,
    ) -> IntentOutcome:
        params: dict[str, Any] = {
            "amount": payment.amount,
            "currency": payment.currency,
            "payment_method": payment.payment_method,
            "confirm": confirm,
            "capture_method": "manual" if manual_capture else payment.capture_method.value,
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
        if return_url and confirm:
            params["return_url"] = return_url
        if challenge:
            params["payment_method_options"] = {"card": {"request_three_d_secure": "challenge"}}
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
            return await self._declined(exc, exc.payment_intent_id or "")
        except InvalidRequest as exc:
            # Stripe refused the request itself and made no intent (its answer is stored
            # against the key, so a retry hears the same): the payment fails, with the reason.
            return IntentOutcome(
                intent_id="",
                status="requires_payment_method",
                decline=Decline(
                    code=exc.code or "invalid_request",
                    decline_code="",
                    message=exc.message[:500],
                ),
            )
        except StripeUnavailable as exc:
            raise StripeUnreachable(
                "Stripe did not answer; retry with the same idempotency key"
            ) from exc
        return outcome_from_intent(intent)

    async def _declined(self, exc: CardDeclined, intent_id: str) -> IntentOutcome:
        """A decline, with Radar's outcome of the failed charge (one read) when available."""
        declined = IntentOutcome(
            intent_id=intent_id,
            status="requires_payment_method",
            charge_id=exc.charge_id or "",
            decline=Decline(
                code=exc.code or "card_declined",
                decline_code=exc.decline_code or "",
                message=str(exc),
            ),
        )
        if not intent_id:
            return declined
        try:
            fresh = await self.retrieve_intent(intent_id)
        except (StripeUnreachable, GatewayError):
            return declined
        if fresh.status != "requires_payment_method" or fresh.decline is None:
            return declined
        return fresh

    async def confirm(
        self,
        payment: Payment,
        idempotency_key: str,
        return_url: str = "",
        *,
        manual_capture: bool = False,
        challenge: bool = False,
    ) -> IntentOutcome:
        params: dict[str, Any] = {"expand": _EXPAND, "capture_method": (
            "manual" if manual_capture else payment.capture_method.value
        )}  # fmt: skip
        if return_url:
            params["return_url"] = return_url
        if challenge:
            params["payment_method_options"] = {"card": {"request_three_d_secure": "challenge"}}
        intent_id = _intent_id(payment.stripe_payment_intent_id)
        try:
            intent = await self.gateway.call(
                "payment_intents.confirm",
                lambda client, options: client.v1.payment_intents.confirm_async(
                    intent_id,
                    params=params,  # type: ignore[arg-type]
                    options=options,
                ),
                idempotency_key=idempotency_key,
                lane=Lane.INTERACTIVE,
            )
        except CardDeclined as exc:
            return await self._declined(exc, intent_id)
        except StripeUnavailable as exc:
            raise StripeUnreachable(
                "Stripe did not answer; retry with the same idempotency key"
            ) from exc
        return outcome_from_intent(intent)

    async def capture(self, intent_id: str, amount: int, idempotency_key: str) -> IntentOutcome:
        intent_id = _intent_id(intent_id)
        params: dict[str, Any] = {"expand": _EXPAND}
        if amount:
            params["amount_to_capture"] = amount
        intent = await self._call(
            "payment_intents.capture",
            lambda client, options: client.v1.payment_intents.capture_async(
                intent_id,
                params=params,
                options=options,
            ),
            idempotency_key,
            Lane.INTERACTIVE,
        )
        return outcome_from_intent(intent)

    async def cancel(self, intent_id: str, reason: str, idempotency_key: str) -> IntentOutcome:
        intent_id = _intent_id(intent_id)
        params: dict[str, Any] = {"expand": _EXPAND}
        if reason:
            params["cancellation_reason"] = reason
        intent = await self._call(
            "payment_intents.cancel",
            lambda client, options: client.v1.payment_intents.cancel_async(
                intent_id,
                params=params,
                options=options,
            ),
            idempotency_key,
            Lane.INTERACTIVE,
        )
        return outcome_from_intent(intent)

    async def retrieve_dispute(self, dispute_id: str) -> DisputeSnapshot:
        dispute = await self._call(
            "disputes.retrieve",
            lambda client, options: client.v1.disputes.retrieve_async(
                dispute_id, params={"expand": ["balance_transactions"]}, options=options
            ),
            None,
            Lane.BACKGROUND,
        )
        return dispute_from(dispute)

    async def approve_review(self, stripe_review_id: str, idempotency_key: str) -> None:
        await self._call(
            "reviews.approve",
            lambda client, options: client.v1.reviews.approve_async(
                stripe_review_id, options=options
            ),
            idempotency_key,
            Lane.BACKGROUND,
        )

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
    ) -> RefundSnapshot:
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
        return await self._with_failure(refund)

    async def retrieve_refund(self, refund_id: str) -> RefundSnapshot:
        refund = await self._call(
            "refunds.retrieve",
            lambda client, options: client.v1.refunds.retrieve_async(
                refund_id, params={"expand": ["balance_transaction"]}, options=options
            ),
            None,
            Lane.BACKGROUND,
        )
        return await self._with_failure(refund)

    async def list_refunds(self, *, payment_intent: str = "", charge: str = "") -> list[Any]:
        """Every refund of a payment (by intent or charge), newest first, as raw objects
        (their balance transactions expanded); `refund_from` reads them."""
        params: dict[str, Any] = {"limit": 100, "expand": ["data.balance_transaction"]}
        if payment_intent:
            params["payment_intent"] = payment_intent
        else:
            params["charge"] = charge
        found: list[Any] = []
        while True:
            page = await self._call(
                "refunds.list",
                lambda client, options: client.v1.refunds.list_async(
                    params=dict(params),
                    options=options,
                ),
                None,
                Lane.BACKGROUND,
            )
            data = list(_get(page, "data") or [])
            found.extend(data)
            if not _get(page, "has_more") or not data:
                return found
            params["starting_after"] = str(_get(data[-1], "id"))

    async def refund_snapshot(self, raw: Any) -> RefundSnapshot:
        """A listed refund as a snapshot (one more read when it failed, for the funds back)."""
        return await self._with_failure(raw)

    async def _with_failure(self, refund: Any) -> RefundSnapshot:
        """A failed refund's `failure_balance_transaction` is read expanded: what the ledger
        books to give the funds back."""
        fbt = _get(refund, "failure_balance_transaction")
        if isinstance(fbt, str) and fbt:
            refund_id = str(_get(refund, "id"))
            refund = await self._call(
                "refunds.retrieve",
                lambda client, options: client.v1.refunds.retrieve_async(
                    refund_id,
                    params={"expand": ["balance_transaction", "failure_balance_transaction"]},
                    options=options,
                ),
                None,
                Lane.BACKGROUND,
            )
        return refund_from(refund)

    async def find_intents(
        self, payment_ids: set[str], created_since: int
    ) -> dict[str, IntentOutcome]:
        """The intents Stripe has for these payments (metadata `payplane_payment_id`), among
        those created since `created_since` (Stripe's clock): how a payment whose creation
        was interrupted is found, or known never to have reached Stripe."""
        params: dict[str, Any] = {
            "limit": 100,
            "created": {"gte": created_since},
            "expand": ["data.latest_charge.balance_transaction"],
        }
        found: dict[str, IntentOutcome] = {}
        while len(found) < len(payment_ids):
            page = await self._call(
                "payment_intents.list",
                lambda client, options: client.v1.payment_intents.list_async(
                    params=dict(params),
                    options=options,
                ),
                None,
                Lane.BACKGROUND,
            )
            data = list(_get(page, "data") or [])
            for intent in data:
                outcome = outcome_from_intent(intent)
                payment_id = (outcome.metadata or {}).get("payplane_payment_id", "")
                if payment_id in payment_ids:
                    found[payment_id] = outcome
            if not _get(page, "has_more") or not data:
                break
            params["starting_after"] = str(_get(data[-1], "id"))
        return found
