"""What the learned engine knows about one payment when it decides. Pure.

A payment names up to seven entities, each of which keeps its own history
(entity_state.py): the customer, the card (Stripe's fingerprint), the email, the IP address,
the device id (when the caller sends one), the shipping address and the seller (the merchant
reference of a marketplace order; the terminal in the handbook's data). An empty value means
"unknown": it names no entity, and its features are missing, never a match.
"""

from __future__ import annotations

from dataclasses import dataclass

from .features import Signals

__all__ = ["KINDS", "PaymentFacts"]

KINDS: tuple[str, ...] = ("customer", "card", "email", "ip", "device", "shipping", "seller")


@dataclass(frozen=True, slots=True)
class PaymentFacts:
    payment_id: str
    at: float  # unix seconds: when the payment was attempted
    amount: int  # minor units of `currency`
    currency: str
    customer: str = ""
    card: str = ""  # card fingerprint
    email: str = ""
    ip: str = ""
    device: str = ""
    shipping: str = ""  # the normalised shipping address
    seller: str = ""
    card_country: str = ""
    ip_country: str = ""
    shipping_country: str = ""
    customer_created_at: float | None = None

    def entity(self, kind: str) -> str:
        """The entity of `kind` this payment names ("" when unknown), normalised."""
        value: str = getattr(self, kind)
        return value.lower() if kind == "email" else value

    def signals(self) -> Signals:
        """The subset the hand-set model (model.py) reads."""
        return Signals(
            amount=self.amount,
            currency=self.currency,
            customer_ref=self.customer,
            card_fingerprint=self.card,
            card_country=self.card_country,
            ip_address=self.ip,
            ip_country=self.ip_country,
            email=self.email,
            shipping_country=self.shipping_country,
            customer_created_at=self.customer_created_at,
        )
