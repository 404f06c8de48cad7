"""A crash between "Stripe charged" and "row written" resumes without a second charge."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from checkout.service.handlers import Checkout
from payplane.checkout.v1 import checkout_pb2

from .harness import Platform, eventually


class _Crash(Exception):
    pass


async def test_a_retry_after_a_crash_resumes_from_the_recovery_point(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_apply = Checkout.apply_intent
    crashes = {"left": 1}

    async def crash_once(self: Checkout, payment_id: str, outcome: Any) -> Any:
        if crashes["left"]:
            crashes["left"] -= 1
            raise _Crash("the process died after Stripe answered")
        return await real_apply(self, payment_id, outcome)

    monkeypatch.setattr(Checkout, "apply_intent", crash_once)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await platform.pay("k-crash", amount=7_700)
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert "error id" in (err.value.details() or "").lower()
    assert "_Crash" not in (err.value.details() or ""), "no internals leak to the caller"

    resumed = await platform.pay("k-crash", amount=7_700)
    assert resumed.status == checkout_pb2.PAYMENT_STATUS_SUCCEEDED
    creates = platform.emulator.control.requests(method="POST", path="/v1/payment_intents")
    assert len(creates) == 2, "Stripe was asked twice with the same key"
    assert len({e["idempotency_key"] for e in creates}) == 1
    assert [e["replayed"] for e in creates] == [False, True]
    # One payment row, one intent at Stripe, one entry in the books.
    page = await platform.checkout().ListPayments(checkout_pb2.ListPaymentsRequest())
    assert [p.id for p in page.payments] == [resumed.id]
    assert len(platform.stripe.v1.payment_intents.list().data) == 1
    await eventually(lambda: platform.balance("revenue"), lambda v: v == -7_700)
