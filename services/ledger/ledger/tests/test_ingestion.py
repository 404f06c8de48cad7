"""The ingestion contract on its own: what each envelope the ledger follows books."""

from __future__ import annotations

from decimal import Decimal

from google.protobuf.message import Message

from ledger.service.ingestion import entries_for
from payplane.checkout.v1 import events_pb2
from payplane.common.v1 import common_pb2
from payplane.events import new_envelope
from payplane.events.v1 import envelope_pb2


class Books:
    """The one question a translator may ask: the rate a payment's charge was booked at."""

    def __init__(self, rate: Decimal | None = None) -> None:
        self.rate = rate
        self.asked: list[str] = []

    async def charge_rate(self, payment_id: str) -> Decimal | None:
        self.asked.append(payment_id)
        return self.rate


def _money(amount: int, currency: str) -> common_pb2.Money:
    return common_pb2.Money(amount_minor=amount, currency=currency)


def _settlement(bt_id: str, gross: int, fee: int = 0, rate: str = "") -> events_pb2.Settlement:
    return events_pb2.Settlement(
        balance_transaction_id=bt_id,
        gross=_money(gross, "usd"),
        fee=_money(fee, "usd"),
        net=_money(gross - fee, "usd"),
        exchange_rate=rate,
    )


def _envelope(type_: str, payload: Message, source: str = "checkout") -> envelope_pb2.Envelope:
    return new_envelope(type_, source, "pay_1", payload)


def _refund_failed(settlement: events_pb2.Settlement | None) -> events_pb2.PaymentRefundFailed:
    return events_pb2.PaymentRefundFailed(
        payment_id="pay_1",
        refund_id="ref_1",
        amount=_money(2_000, "eur"),
        stripe_refund_id="re_1",
        stripe_charge_id="ch_1",
        status="failed",
        failure_reason="expired_or_canceled_card",
        settlement=settlement,
    )


async def test_a_failed_refund_is_booked_with_the_transaction_that_returned_the_funds() -> None:
    books = Books()
    envelope = _envelope("payment.refund_failed", _refund_failed(_settlement("txn_back", 2_000)))
    [entry] = await entries_for(envelope, books)
    assert (entry.source_event_id, entry.source_type, entry.source_id) == (
        envelope.event_id, "checkout.payment.refund_failed", "pay_1"
    )  # fmt: skip
    assert {p.account: p.amount for p in entry.postings} == {
        "stripe_pending": 2_000, "refunds": -2_000
    }  # fmt: skip
    assert entry.link is not None and (entry.link.balance_transaction_id, entry.link.role) == (
        "txn_back", "booking"
    )  # fmt: skip
    assert entry.refs == {
        "charge": "ch_1", "stripe_refund": "re_1", "refund_status": "failed",
        "failure_reason": "expired_or_canceled_card", "balance_transaction": "txn_back",
        "refund": "ref_1",
    }  # fmt: skip
    assert books.asked == []  # not converted: no rate to look up


async def test_a_failed_converted_refund_credits_refunds_at_the_charges_rate() -> None:
    books = Books(Decimal("1.086957"))
    returned = _settlement("txn_back", 2_500, rate="1.25")
    [entry] = await entries_for(_envelope("payment.refund_failed", _refund_failed(returned)), books)
    assert books.asked == ["pay_1"]
    assert {p.account: p.amount for p in entry.postings} == {
        "stripe_pending": 2_500, "refunds": -2_174, "fx_gain_loss": -326
    }  # fmt: skip


async def test_a_failed_refund_without_a_returning_transaction_books_nothing_yet() -> None:
    assert (
        await entries_for(_envelope("payment.refund_failed", _refund_failed(None)), Books()) == []
    )
