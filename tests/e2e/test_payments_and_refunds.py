"""Declines, refunds, listing, and the books following every payment."""

from __future__ import annotations

import grpc
import pytest

from payplane.checkout.v1 import checkout_pb2
from payplane.common.v1 import common_pb2
from payplane.grpckit import idempotency_metadata

from .harness import Platform, eventually


async def test_a_decline_is_a_failed_payment_with_advice(platform: Platform) -> None:
    failed = await platform.pay("k-decline", pm="pm_card_chargeDeclinedInsufficientFunds")
    assert failed.status == checkout_pb2.PAYMENT_STATUS_FAILED
    assert failed.decline.decline_code == "insufficient_funds"
    assert failed.decline.advice == checkout_pb2.RETRY_ADVICE_MAYBE_LATER
    stolen = await platform.pay("k-stolen", pm="pm_card_chargeDeclinedStolenCard")
    assert stolen.decline.advice == checkout_pb2.RETRY_ADVICE_NEVER
    # A repeat of a declined request replays the decline; Stripe is not asked again.
    again = await platform.pay("k-decline", pm="pm_card_chargeDeclinedInsufficientFunds")
    assert again.id == failed.id
    assert len(platform.stripe_creates()) == 2


async def test_refunds_partial_full_and_refused(platform: Platform) -> None:
    paid = await platform.pay("k-pay", amount=10_000)
    stub = platform.checkout()

    async def refund(key: str, amount: int) -> checkout_pb2.Refund:
        result: checkout_pb2.Refund = await stub.RefundPayment(
            checkout_pb2.RefundPaymentRequest(
                payment_id=paid.id, amount_minor=amount, reason="requested_by_customer"
            ),
            metadata=idempotency_metadata(key),
            timeout=30,
        )
        return result

    first = await refund("k-r1", 3_000)
    assert first.amount.amount_minor == 3_000 and first.stripe_refund_id.startswith("re_")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await refund("k-r2", 8_000)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    rest = await refund("k-r3", 0)
    assert rest.amount.amount_minor == 7_000
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await refund("k-r4", 0)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    creates = platform.emulator.control.requests(method="POST", path="/v1/refunds")
    assert len([e for e in creates if e["status"] == 200 and not e["replayed"]]) == 2
    refunds = await eventually(lambda: platform.balance("refunds"), lambda v: v == 10_000)
    assert refunds == 10_000
    after = await stub.GetPayment(checkout_pb2.GetPaymentRequest(payment_id=paid.id))
    assert after.amount_refunded.amount_minor == 10_000


async def test_listing_pages_and_filters(platform: Platform) -> None:
    ids = []
    for i in range(5):
        p = await platform.pay(f"k-list-{i}", customer_ref="cust-a" if i % 2 else "cust-b")
        ids.append(p.id)
    await platform.pay("k-list-declined", pm="pm_card_chargeDeclined", customer_ref="cust-a")
    stub = platform.checkout()
    seen: list[str] = []
    token = ""
    while True:
        page = await stub.ListPayments(
            checkout_pb2.ListPaymentsRequest(
                page=common_pb2.PageRequest(page_size=2, page_token=token),
                status=checkout_pb2.PAYMENT_STATUS_SUCCEEDED,
            )
        )
        seen.extend(p.id for p in page.payments)
        token = page.page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(ids)
    only_a = await stub.ListPayments(checkout_pb2.ListPaymentsRequest(customer_ref="cust-a"))
    assert {p.customer_ref for p in only_a.payments} == {"cust-a"}
    assert len(only_a.payments) == 3


async def test_the_ledger_balances_and_equals_the_sum_of_payments(platform: Platform) -> None:
    amounts = {"usd": [1_000, 2_550, 9_999], "eur": [4_000, 1_234]}
    n = 0
    for currency, values in amounts.items():
        for amount in values:
            n += 1
            await platform.pay(f"k-sum-{n}", amount=amount, currency=currency)
    # Everything settles in the account's currency (usd): Stripe converts the eur charges.
    bts = platform.stripe.v1.balance_transactions.list(params={"limit": 100}).data
    charges = [bt for bt in bts if bt.type == "charge"]
    assert len(charges) == n
    gross = sum(bt.amount for bt in charges)
    fees = sum(bt.fee for bt in charges)
    revenue = await eventually(lambda: platform.balance("revenue"), lambda v: v == -gross)
    assert revenue == -gross
    assert await platform.balance("stripe_fees") == fees
    assert await platform.balance("stripe_pending") == gross - fees
    # debits equal credits
    total = sum([await platform.balance(a) for a in ("revenue", "stripe_fees", "stripe_pending")])
    assert total == 0
