"""Bad input gets a clear status and charges nothing."""

from __future__ import annotations

import grpc
import pytest

from payplane.checkout.v1 import checkout_pb2
from payplane.common.v1 import common_pb2
from payplane.grpckit import idempotency_metadata

from .harness import Platform


def _request(**overrides: object) -> checkout_pb2.CreatePaymentRequest:
    fields: dict[str, object] = {
        "amount": common_pb2.Money(amount_minor=1_000, currency="usd"),
        "customer_ref": "cust-1",
        "payment_method": "pm_card_visa",
    }
    fields.update(overrides)
    return checkout_pb2.CreatePaymentRequest(**fields)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (_request(amount=common_pb2.Money(amount_minor=0, currency="usd")), "amount_minor"),
        (_request(amount=common_pb2.Money(amount_minor=-5, currency="usd")), "amount_minor"),
        (_request(amount=common_pb2.Money(amount_minor=100, currency="xyz")), "currency"),
        (_request(amount=common_pb2.Money(amount_minor=100, currency="")), "currency"),
        (checkout_pb2.CreatePaymentRequest(customer_ref="c", payment_method="pm"), "amount"),
        (_request(payment_method=""), "payment_method"),
        (_request(customer_ref=""), "customer_ref"),
        (_request(metadata={f"k{i}": "v" for i in range(51)}), "metadata"),
        (_request(metadata={"k": "v" * 501}), "metadata"),
    ],
)
async def test_invalid_payments_are_refused_before_stripe(
    platform: Platform, request_: checkout_pb2.CreatePaymentRequest, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await platform.checkout().CreatePayment(
            request_, metadata=idempotency_metadata("k-bad"), timeout=10
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (err.value.details() or "")
    assert platform.stripe_creates() == []


async def test_a_corrected_request_may_reuse_the_key(platform: Platform) -> None:
    with pytest.raises(grpc.aio.AioRpcError):
        await platform.checkout().CreatePayment(
            _request(payment_method=""), metadata=idempotency_metadata("k-fix"), timeout=10
        )
    paid = await platform.checkout().CreatePayment(
        _request(), metadata=idempotency_metadata("k-fix"), timeout=30
    )
    assert paid.status == checkout_pb2.PAYMENT_STATUS_SUCCEEDED


async def test_no_idempotency_key_is_invalid_argument(platform: Platform) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await platform.checkout().CreatePayment(_request(), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert platform.stripe_creates() == []


async def test_no_credential_and_wrong_caller(platform: Platform) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await platform.checkout_with_token("not-a-token").CreatePayment(
            _request(), metadata=idempotency_metadata("k-auth"), timeout=10
        )
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # support may refund and read, not take payments
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await platform.checkout("support").CreatePayment(
            _request(), metadata=idempotency_metadata("k-auth"), timeout=10
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert platform.stripe_creates() == []


async def test_unknown_payment_is_not_found(platform: Platform) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await platform.checkout().GetPayment(
            checkout_pb2.GetPaymentRequest(payment_id="pay_nope"), timeout=10
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
