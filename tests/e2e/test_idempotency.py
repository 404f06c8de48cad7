"""The same idempotency key never charges twice: sequentially, concurrently, after faults."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from payplane.checkout.v1 import checkout_pb2
from payplane.grpckit import REPLAYED, idempotency_metadata

from .harness import Platform, eventually


async def test_a_repeat_returns_the_same_payment_and_is_marked_replayed(
    platform: Platform,
) -> None:
    stub = platform.checkout()
    request = checkout_pb2.CreatePaymentRequest(
        amount={"amount_minor": 1_500, "currency": "usd"},
        customer_ref="cust-9",
        payment_method="pm_card_visa",
    )
    call = stub.CreatePayment(request, metadata=idempotency_metadata("k-repeat"), timeout=30)
    first = await call
    assert dict(await call.trailing_metadata() or ()).get(REPLAYED) is None
    again_call = stub.CreatePayment(request, metadata=idempotency_metadata("k-repeat"), timeout=30)
    again = await again_call
    assert again.id == first.id and again.status == checkout_pb2.PAYMENT_STATUS_SUCCEEDED
    assert dict(await again_call.trailing_metadata() or ()).get(REPLAYED) == "true"
    assert len(platform.stripe_creates()) == 1


async def test_concurrent_duplicates_charge_once(platform: Platform) -> None:
    async def attempt() -> checkout_pb2.Payment | grpc.StatusCode:
        try:
            return await platform.pay("k-race", amount=4_200)
        except grpc.aio.AioRpcError as exc:
            return exc.code()

    results = await asyncio.gather(*(attempt() for _ in range(12)))
    payments = [r for r in results if isinstance(r, checkout_pb2.Payment)]
    refused = [r for r in results if not isinstance(r, checkout_pb2.Payment)]
    assert payments, "at least the first call completes"
    assert {p.id for p in payments} == {payments[0].id}
    assert set(refused) <= {grpc.StatusCode.ABORTED}
    # A caller that was told ABORTED retries with the same key and gets the same payment.
    retried = await platform.pay("k-race", amount=4_200)
    assert retried.id == payments[0].id
    assert len(platform.stripe_creates()) == 1
    await eventually(lambda: platform.balance("revenue"), lambda v: v != 0)


async def test_a_different_request_under_a_used_key_is_refused(platform: Platform) -> None:
    await platform.pay("k-mismatch", amount=1_000)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await platform.pay("k-mismatch", amount=9_999)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(platform.stripe_creates()) == 1


async def test_stripe_failing_30_percent_still_ends_in_one_charge_per_key(
    platform: Platform,
) -> None:
    platform.emulator.control.faults(
        error_rate=0.3, reset_before_rate=0.1, reset_after_rate=0.2, methods=["POST"]
    )
    keys = [f"k-flaky-{i}" for i in range(12)]
    paid: dict[str, str] = {}
    for key in keys:
        for _ in range(20):  # the caller's own retries, always with the same key
            try:
                payment = await platform.pay(key, amount=1_000)
            except grpc.aio.AioRpcError as exc:
                assert exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED)
                await asyncio.sleep(0.05)
                continue
            paid[key] = payment.id
            assert payment.status == checkout_pb2.PAYMENT_STATUS_SUCCEEDED
            break
    platform.emulator.control.clear_faults()
    assert set(paid) == set(keys)
    log = platform.emulator.control.requests(method="POST", path="/v1/payment_intents")
    assert any(e["status"] == 500 for e in log)
    assert any(e.get("reset") == "after" for e in log), "an ambiguous failure was exercised"
    # What Stripe really executed: answered 200, or took effect before the connection reset.
    executed = [
        e for e in log if not e["replayed"] and 200 in (e["status"], e.get("executed_status"))
    ]
    executed_keys = [e["idempotency_key"] for e in executed]
    assert len(executed_keys) == len(set(executed_keys)) == len(keys)
    intents = platform.stripe.v1.payment_intents.list(params={"limit": 100}).data
    assert len(intents) == len(keys)
    # The books follow: every payment booked exactly once.
    revenue = await eventually(
        lambda: platform.balance("revenue"), lambda v: v == -1_000 * len(keys)
    )
    assert revenue == -12_000
