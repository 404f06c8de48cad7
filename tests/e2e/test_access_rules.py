"""Who may do what to whose data (issue 8, defect 12), over real gRPC: the books are
finance's and admin's, a caller acts on the payments it created unless its role spans
callers, a client_secret goes only to the payment's creator, and a statement's balances are
the books' whatever page token a client sends. The whole method-by-role table is in
tests/authz; these are the regressions, one per hole found."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from payplane.checkout.v1 import checkout_pb2
from payplane.common.v1 import common_pb2
from payplane.grpckit import idempotency_metadata
from payplane.ledger.v1 import ledger_pb2

from .harness import Platform, eventually


async def _code(call: Awaitable[Any]) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("caller", ["storefront", "support"])
async def test_only_the_books_roles_read_the_ledger(platform: Platform, caller: str) -> None:
    reads: list[Callable[[Any], Awaitable[Any]]] = [
        lambda s: s.GetBalance(ledger_pb2.GetBalanceRequest(account="revenue", currency="usd")),
        lambda s: s.ListEntries(ledger_pb2.ListEntriesRequest()),
        lambda s: s.GetAccountStatement(
            ledger_pb2.GetAccountStatementRequest(account="revenue", currency="usd")
        ),
        lambda s: s.ListDiscrepancies(ledger_pb2.ListDiscrepanciesRequest()),
    ]
    for read in reads:
        assert await _code(read(platform.ledger(caller))) == grpc.StatusCode.PERMISSION_DENIED
        assert await _code(read(platform.ledger("finance"))) == grpc.StatusCode.OK


async def test_a_caller_cannot_refund_or_touch_another_callers_payment(platform: Platform) -> None:
    request = checkout_pb2.CreatePaymentRequest(
        amount=common_pb2.Money(amount_minor=2_500, currency="usd"),
        customer_ref="cust-admin",
        payment_method="pm_card_visa",
    )
    theirs = await platform.checkout("admin").CreatePayment(
        request, metadata=idempotency_metadata("k-admins"), timeout=30
    )
    assert theirs.status == checkout_pb2.PAYMENT_STATUS_SUCCEEDED
    storefront = platform.checkout("storefront")
    refunds_before = platform.emulator.control.requests(method="POST", path="/v1/refunds")
    attempts = [
        storefront.RefundPayment(
            checkout_pb2.RefundPaymentRequest(payment_id=theirs.id),
            metadata=idempotency_metadata("k-steal"),
        ),
        storefront.CancelPayment(
            checkout_pb2.CancelPaymentRequest(payment_id=theirs.id),
            metadata=idempotency_metadata("k-steal-cancel"),
        ),
        storefront.CapturePayment(
            checkout_pb2.CapturePaymentRequest(payment_id=theirs.id),
            metadata=idempotency_metadata("k-steal-capture"),
        ),
        storefront.GetPayment(checkout_pb2.GetPaymentRequest(payment_id=theirs.id)),
    ]
    for attempt in attempts:
        # Not theirs: as if it did not exist (ids are no oracle for other callers' business).
        assert await _code(attempt) == grpc.StatusCode.NOT_FOUND
    listed = await storefront.ListPayments(checkout_pb2.ListPaymentsRequest())
    assert theirs.id not in [p.id for p in listed.payments]
    assert platform.emulator.control.requests(method="POST", path="/v1/refunds") == refunds_before
    after = await platform.checkout("admin").GetPayment(
        checkout_pb2.GetPaymentRequest(payment_id=theirs.id)
    )
    assert after.amount_refunded.amount_minor == 0
    # Support refunds on any caller's behalf (a customer's complaint reaches support).
    refund = await platform.checkout("support").RefundPayment(
        checkout_pb2.RefundPaymentRequest(payment_id=theirs.id, amount_minor=500),
        metadata=idempotency_metadata("k-support-refund"),
    )
    assert refund.status == "succeeded"


async def test_the_client_secret_goes_only_to_the_creating_caller(platform: Platform) -> None:
    mine = await platform.pay("k-3ds", pm="pm_card_threeDSecure2Required")
    assert mine.status == checkout_pb2.PAYMENT_STATUS_REQUIRES_ACTION
    assert mine.next_action.client_secret  # the creator completes 3DS with it
    again = await platform.checkout("storefront").GetPayment(
        checkout_pb2.GetPaymentRequest(payment_id=mine.id)
    )
    assert again.next_action.client_secret == mine.next_action.client_secret
    for caller in ("admin", "support", "reviewer", "ledger"):
        seen = await platform.checkout(caller).GetPayment(
            checkout_pb2.GetPaymentRequest(payment_id=mine.id)
        )
        assert seen.next_action.type and not seen.next_action.client_secret, caller
        listed = await platform.checkout(caller).ListPayments(checkout_pb2.ListPaymentsRequest())
        assert [p.next_action.client_secret for p in listed.payments] == [""], caller


async def test_a_statement_page_token_carries_no_balance(platform: Platform) -> None:
    for i, amount in enumerate((1_000, 2_000, 3_000)):
        await platform.pay(f"k-st-{i}", amount=amount)
    await eventually(lambda: platform.balance("revenue"), lambda v: v == -6_000)
    ledger = platform.ledger("finance")

    async def page(token: str, account: str = "revenue") -> ledger_pb2.AccountStatement:
        reply: ledger_pb2.AccountStatement = await ledger.GetAccountStatement(
            ledger_pb2.GetAccountStatementRequest(
                account=account,
                currency="usd",
                page=common_pb2.PageRequest(page_size=1, page_token=token),
            ),
            timeout=10,
        )
        return reply

    first = await page("")
    assert [line.running_balance.amount_minor for line in first.lines] == [-1_000]
    second = await page(first.page.next_page_token)
    assert [line.running_balance.amount_minor for line in second.lines] == [-3_000]
    seq = first.lines[0].seq
    for forged in (f"{seq}:999999", f"{seq}:-1000", str(seq), first.page.next_page_token + "A"):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await page(forged)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, forged
    # A token is bound to its statement: another account's list refuses it.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await page(first.page.next_page_token, account="stripe_fees")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
