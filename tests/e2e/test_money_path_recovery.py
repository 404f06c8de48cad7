"""An attempt that dies between taking a step and recording its recovery point (kill -9, a
cancelled call, a deadline) leaves nothing behind that a retry with the same key cannot
finish: refunds are made once at Stripe and the payment stays refundable; a payment is made
once, with one row. On SQLite and, with TEST_POSTGRES_URL, PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from payplane.checkout.v1 import checkout_pb2
from payplane.grpckit import idempotency_metadata
from payplane.idempotency import Record

from .harness import Platform, eventually


class _Died(Exception):
    """The process died here (raised where a kill -9 would have stopped it)."""


def die_at_the_next_checkpoint(monkeypatch: pytest.MonkeyPatch, point: str) -> list[str]:
    """Kill the attempt while it commits its recovery point `point` (once)."""
    real = Record.checkpoint
    died: list[str] = []

    async def checkpoint(self: Record, name: str, data: Any = None, **kw: Any) -> None:
        if name == point and not died:
            died.append(name)
            raise _Died(f"killed while recording {name}")
        await real(self, name, data, **kw)

    monkeypatch.setattr(Record, "checkpoint", checkpoint)
    return died


async def _refund(
    platform: Platform, payment_id: str, key: str, amount: int, deadline_s: float = 30
) -> checkout_pb2.Refund:
    result: checkout_pb2.Refund = await platform.checkout().RefundPayment(
        checkout_pb2.RefundPaymentRequest(
            payment_id=payment_id, amount_minor=amount, reason="requested_by_customer"
        ),
        metadata=idempotency_metadata(key),
        timeout=deadline_s,
    )
    return result


def executed_refunds(platform: Platform) -> list[dict[str, Any]]:
    """Refund creations Stripe really executed (replays excluded)."""
    return [
        e
        for e in platform.emulator.control.requests(method="POST", path="/v1/refunds")
        if e["status"] == 200 and not e["replayed"]
    ]


async def _payment(platform: Platform, payment_id: str) -> checkout_pb2.Payment:
    result: checkout_pb2.Payment = await platform.checkout().GetPayment(
        checkout_pb2.GetPaymentRequest(payment_id=payment_id), timeout=10
    )
    return result


async def test_a_refund_killed_before_its_recovery_point_is_retried_once_and_stays_refundable(
    platform_on: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform = platform_on
    paid = await platform.pay("k-pay", amount=10_000)
    died = die_at_the_next_checkpoint(monkeypatch, "refund_created")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _refund(platform, paid.id, "k-refund", 4_000)
    assert died and err.value.code() == grpc.StatusCode.INTERNAL

    again = await _refund(platform, paid.id, "k-refund", 4_000)
    assert again.amount.amount_minor == 4_000 and again.stripe_refund_id.startswith("re_")
    assert len(executed_refunds(platform)) == 1, "Stripe refunded exactly once"
    after = await _payment(platform, paid.id)
    assert after.amount_refunded.amount_minor == 4_000
    # The rest is still refundable, and the books follow Stripe.
    rest = await _refund(platform, paid.id, "k-refund-rest", 0)
    assert rest.amount.amount_minor == 6_000
    assert len(executed_refunds(platform)) == 2
    await eventually(lambda: platform.balance("refunds"), lambda v: v == 10_000)


async def test_a_full_refund_killed_before_its_recovery_point_is_not_refused_on_retry(
    platform_on: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform = platform_on
    paid = await platform.pay("k-pay", amount=7_000)
    die_at_the_next_checkpoint(monkeypatch, "refund_created")
    with pytest.raises(grpc.aio.AioRpcError):
        await _refund(platform, paid.id, "k-full", 0)
    # Not "already fully refunded": the reservation died with the attempt.
    again = await _refund(platform, paid.id, "k-full", 0)
    assert again.amount.amount_minor == 7_000 and again.status == "succeeded"
    assert len(executed_refunds(platform)) == 1
    assert (await _payment(platform, paid.id)).amount_refunded.amount_minor == 7_000


async def test_a_payment_killed_before_its_recovery_point_is_made_once_with_one_row(
    platform_on: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform = platform_on
    died = die_at_the_next_checkpoint(monkeypatch, "payment_created")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await platform.pay("k-pay", amount=3_300)
    assert died and err.value.code() == grpc.StatusCode.INTERNAL
    paid = await platform.pay("k-pay", amount=3_300)
    assert paid.status == checkout_pb2.PAYMENT_STATUS_SUCCEEDED
    page = await platform.checkout().ListPayments(checkout_pb2.ListPaymentsRequest(), timeout=10)
    assert [p.id for p in page.payments] == [paid.id], "no orphan PENDING payment"
    assert len(platform.stripe_creates()) == 1


async def test_a_refund_cancelled_mid_way_is_finished_by_the_retry_once(
    platform_on: Platform,
) -> None:
    platform = platform_on
    paid = await platform.pay("k-pay", amount=5_000)
    # Stripe is slow to answer the refund: the caller's deadline passes while it is asked.
    platform.emulator.control.faults(latency_ms=1_500, methods=["POST"], path_prefix="/v1/refunds")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _refund(platform, paid.id, "k-slow", 2_000, deadline_s=0.5)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    platform.emulator.control.clear_faults()

    async def retried() -> checkout_pb2.Refund | None:
        try:
            return await _refund(platform, paid.id, "k-slow", 2_000)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.ABORTED:  # still running: retry later
                raise
            await asyncio.sleep(0.1)
            return None

    refund = await eventually(retried, lambda r: r is not None)
    assert refund is not None and refund.amount.amount_minor == 2_000
    assert len(executed_refunds(platform)) == 1
    after = await eventually(
        lambda: _payment(platform, paid.id), lambda p: p.amount_refunded.amount_minor == 2_000
    )
    assert after.status == checkout_pb2.PAYMENT_STATUS_SUCCEEDED
    await eventually(lambda: platform.balance("refunds"), lambda v: v == 2_000)


async def test_a_refund_cancelled_while_recording_its_recovery_point_is_retried_once(
    platform_on: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform = platform_on
    """The caller's deadline cancels the attempt at the await that records the recovery
    point: the reservation must go with it, or the retry reserves (and refunds) again."""
    paid = await platform.pay("k-pay", amount=10_000)
    real = Record.checkpoint
    stuck: list[str] = []

    async def hang_once(self: Record, name: str, data: Any = None, **kw: Any) -> None:
        if name == "refund_created" and not stuck:
            stuck.append(name)
            await asyncio.Event().wait()  # until the deadline cancels the attempt
        await real(self, name, data, **kw)

    monkeypatch.setattr(Record, "checkpoint", hang_once)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _refund(platform, paid.id, "k-cancelled", 3_000, deadline_s=1.0)
    assert stuck and err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

    async def retried() -> checkout_pb2.Refund | None:
        try:
            return await _refund(platform, paid.id, "k-cancelled", 3_000)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.ABORTED:
                raise
            return None

    refund = await eventually(retried, lambda r: r is not None)
    assert refund is not None and refund.amount.amount_minor == 3_000
    assert len(executed_refunds(platform)) == 1
    after = await _payment(platform, paid.id)
    assert after.amount_refunded.amount_minor == 3_000
