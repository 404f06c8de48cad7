"""Input at the edges (issue 8, defects 7 and 8): what Stripe would refuse, out-of-range
numbers and forged page tokens are INVALID_ARGUMENT with a bounded message naming the field;
nothing is stored, nothing reaches Stripe, and no payment is left half-made."""

from __future__ import annotations

import base64
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select, update

from checkout.adapters.tables import payments
from payplane.checkout.v1 import checkout_pb2, review_pb2
from payplane.common.v1 import common_pb2
from payplane.grpckit import idempotency_metadata
from payplane.ledger.v1 import ledger_pb2

from .harness import Platform

# What any refusal may say at most: enough to name the field and the limit.
MAX_DETAILS = 2_048
CARD_NUMBER = "4242424242424242"


def _request(**overrides: Any) -> checkout_pb2.CreatePaymentRequest:
    fields: dict[str, Any] = {
        "amount": common_pb2.Money(amount_minor=1_000, currency="usd"),
        "customer_ref": "cust-edge",
        "payment_method": "pm_card_visa",
    }
    fields.update(overrides)
    return checkout_pb2.CreatePaymentRequest(**fields)


def _money(amount: int, currency: str) -> common_pb2.Money:
    return common_pb2.Money(amount_minor=amount, currency=currency)


async def _payment_rows(p: Platform) -> list[Any]:
    async with p.checkout_app.engine.connect() as conn:
        return list((await conn.execute(select(payments))).all())


def _refused(err: pytest.ExceptionInfo[grpc.aio.AioRpcError], field: str) -> str:
    details = err.value.details() or ""
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.value.code(), details[:300])
    assert field in details, details[:300]
    assert len(details) <= MAX_DETAILS
    return details


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


STRIPE_REFUSES = [
    pytest.param(_request(amount=_money(49, "usd")), "amount.amount_minor", id="usd-below-50"),
    pytest.param(_request(amount=_money(29, "gbp")), "amount.amount_minor", id="gbp-below-30"),
    pytest.param(_request(amount=_money(49, "jpy")), "amount.amount_minor", id="jpy-below-50"),
    pytest.param(_request(amount=_money(10, "eur")), "amount.amount_minor", id="eur-below-50"),
    pytest.param(
        _request(metadata={f"k{i}": "v" for i in range(49)}), "metadata", id="49+2-metadata-keys"
    ),
    pytest.param(_request(metadata={"payplane_payment_id": "x"}), "metadata", id="reserved-key"),
    pytest.param(_request(customer_ref="c" * 501), "customer_ref", id="customer-ref-501"),
    pytest.param(_request(description="d" * 1_001), "description", id="description-1001"),
    pytest.param(_request(payment_method=CARD_NUMBER), "payment_method", id="card-number"),
    pytest.param(
        _request(amount=_money(49, "usd"), confirm_later=True),
        "amount.amount_minor",
        id="confirm-later-below-minimum",
    ),
    pytest.param(
        _request(customer_created_at=Timestamp(seconds=2**62)),
        "customer_created_at",
        id="customer-created-at-overflow",
    ),
    pytest.param(
        _request(customer_created_at=Timestamp(seconds=-(2**62))),
        "customer_created_at",
        id="customer-created-at-underflow",
    ),
]


@pytest.mark.parametrize(("request_", "field"), STRIPE_REFUSES)
async def test_what_stripe_refuses_is_refused_first_and_leaves_nothing(
    platform: Platform, request_: checkout_pb2.CreatePaymentRequest, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await platform.checkout().CreatePayment(
            request_, metadata=idempotency_metadata("k-edge"), timeout=15
        )
    details = _refused(err, field)
    assert CARD_NUMBER not in details
    assert await _payment_rows(platform) == []
    assert platform.stripe_creates() == []
    # A card number never travels to Stripe (nor into its request log) either.
    assert not [r for r in platform.emulator.control.requests() if CARD_NUMBER in str(r)]


async def test_confirm_and_cancel_of_a_payment_without_an_intent_never_call_stripe(
    platform: Platform,
) -> None:
    draft = await platform.pay("k-draft", confirm_later=True)
    assert draft.status == checkout_pb2.PAYMENT_STATUS_PENDING
    # The state a crash between the payment's commit and Stripe's answer leaves behind.
    async with platform.checkout_app.engine.begin() as conn:
        await conn.execute(
            update(payments).where(payments.c.id == draft.id).values(stripe_payment_intent_id=None)
        )
    platform.emulator.control.clear_requests()
    stub = platform.checkout()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ConfirmPayment(
            checkout_pb2.ConfirmPaymentRequest(payment_id=draft.id),
            metadata=idempotency_metadata("k-confirm"),
            timeout=15,
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION, err.value.details()
    assert "intent" in (err.value.details() or "").lower()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CancelPayment(
            checkout_pb2.CancelPaymentRequest(payment_id=draft.id),
            metadata=idempotency_metadata("k-cancel"),
            timeout=15,
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION, err.value.details()
    assert not [r for r in platform.emulator.control.requests() if "//" in r["path"]]
    assert [r for r in platform.emulator.control.requests() if r["method"] == "POST"] == []
    row = (await _payment_rows(platform))[0]
    assert row.fraud_decision is None  # the refused confirm decided nothing


FORGED_CURSORS = [
    pytest.param(_b64("1e300|pay_x"), id="float-overflow"),
    pytest.param(_b64("inf|pay_x"), id="infinity"),
    pytest.param(_b64("nan|pay_x"), id="nan"),
    pytest.param("!!not base64!!", id="not-base64"),
    pytest.param("A" * 100_000, id="100k"),
]


@pytest.mark.parametrize("token", FORGED_CURSORS)
async def test_forged_payment_and_review_page_tokens(platform: Platform, token: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await platform.checkout().ListPayments(
            checkout_pb2.ListPaymentsRequest(page=common_pb2.PageRequest(page_token=token)),
            timeout=10,
        )
    _refused(err, "page_token")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await platform.reviews().ListReviews(
            review_pb2.ListReviewsRequest(page=common_pb2.PageRequest(page_token=token)),
            timeout=10,
        )
    _refused(err, "page_token")


@pytest.mark.parametrize(
    ("min_age", "max_age"), [(0, 2**62), (2**62, 0), (2**63 - 1, 2**63 - 1)], ids=str
)
async def test_review_ages_out_of_range(platform: Platform, min_age: int, max_age: int) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await platform.reviews().ListReviews(
            review_pb2.ListReviewsRequest(min_age_s=min_age, max_age_s=max_age), timeout=10
        )
    _refused(err, "age_s")


@pytest.mark.parametrize(
    "token", ["9" * 30, "-" + "9" * 30, "1e9", "9" * 30 + ":0", "1:" + "9" * 30, "A" * 100_000]
)
async def test_forged_ledger_page_tokens(platform: Platform, token: str) -> None:
    ledger = platform.ledger("finance")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await ledger.ListEntries(
            ledger_pb2.ListEntriesRequest(page=common_pb2.PageRequest(page_token=token)),
            timeout=10,
        )
    _refused(err, "page_token")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await ledger.GetAccountStatement(
            ledger_pb2.GetAccountStatementRequest(
                account="revenue", currency="usd", page=common_pb2.PageRequest(page_token=token)
            ),
            timeout=10,
        )
    _refused(err, "page_token")


OUT_OF_RANGE = [Timestamp(seconds=2**62), Timestamp(seconds=-(2**62)), Timestamp(seconds=10**13)]


@pytest.mark.parametrize("when", OUT_OF_RANGE, ids=lambda t: str(t.seconds))
async def test_ledger_times_out_of_range(platform: Platform, when: Timestamp) -> None:
    ledger = platform.ledger("finance")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await ledger.GetBalance(
            ledger_pb2.GetBalanceRequest(account="revenue", currency="usd", as_of=when), timeout=10
        )
    _refused(err, "as_of")
    for field in ("since", "until"):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await ledger.GetAccountStatement(
                ledger_pb2.GetAccountStatementRequest(
                    account="revenue", currency="usd", **{field: when}
                ),
                timeout=10,
            )
        _refused(err, field)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await ledger.RunReconciliation(
                ledger_pb2.RunReconciliationRequest(skip_import=True, **{field: when}),
                metadata=idempotency_metadata(f"k-recon-{field}-{when.seconds}"),
                timeout=10,
            )
        _refused(err, field)


async def test_a_negative_balance_sequence_is_refused(platform: Platform) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await platform.ledger("finance").GetBalance(
            ledger_pb2.GetBalanceRequest(account="revenue", currency="usd", as_of_seq=-1),
            timeout=10,
        )
    _refused(err, "as_of_seq")


HUGE_ID = "pay_" + "x" * 100_000


async def test_a_huge_id_is_refused_without_echoing_it(platform: Platform) -> None:
    calls = [
        platform.checkout().GetPayment(checkout_pb2.GetPaymentRequest(payment_id=HUGE_ID)),
        platform.checkout().RefundPayment(
            checkout_pb2.RefundPaymentRequest(payment_id=HUGE_ID),
            metadata=idempotency_metadata("k-huge-refund"),
        ),
        platform.reviews().GetReview(review_pb2.GetReviewRequest(review_id=HUGE_ID)),
        platform.ledger("finance").GetEntry(ledger_pb2.GetEntryRequest(entry_id=HUGE_ID)),
        platform.ledger("finance").GetReconciliationRun(
            ledger_pb2.GetReconciliationRunRequest(run_id=HUGE_ID)
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        _refused(err, "_id")


async def test_a_well_formed_unknown_id_is_not_found(platform: Platform) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await platform.checkout().GetPayment(
            checkout_pb2.GetPaymentRequest(payment_id="pay_" + "0" * 24), timeout=10
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
