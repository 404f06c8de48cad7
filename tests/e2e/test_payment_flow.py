"""One payment from a gRPC call to the books, through real gRPC, NATS and the emulator."""

from __future__ import annotations

from payplane.checkout.v1 import checkout_pb2

from .harness import Platform, eventually


async def test_a_payment_is_charged_once_and_booked(platform_on: Platform) -> None:
    p = platform_on
    paid = await p.pay("order-1", amount=10_000)
    assert paid.status == checkout_pb2.PAYMENT_STATUS_SUCCEEDED
    assert paid.id.startswith("pay_") and paid.stripe_payment_intent_id.startswith("pi_")
    assert len(p.stripe_creates()) == 1

    # Stripe's balance transaction for the charge: what the books must show.
    charge = p.stripe.v1.charges.retrieve(
        paid.stripe_charge_id, params={"expand": ["balance_transaction"]}
    )
    bt = charge.balance_transaction
    revenue = await eventually(lambda: p.balance("revenue"), lambda v: v != 0)
    assert revenue == -bt.amount
    assert await p.balance("stripe_fees") == bt.fee
    assert await p.balance("stripe_pending") == bt.net
