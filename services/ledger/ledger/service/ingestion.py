"""The one contract by which every service's events reach the books.

A producing service publishes `payplane.events.v1.Envelope`s on its own JetStream stream
(`checkout.>` on CHECKOUT; billing and payouts will use BILLING and PAYOUTS). An event that
moves money carries a `Settlement` taken from Stripe's balance transaction (id, gross, fee,
net in the settlement currency, exchange rate), so the ledger books exactly what Stripe
moved and can prove it later. The ledger registers, per stream, the subjects it follows and
one translator per event type; a translator turns an envelope into journal entries (pure
rules from domain.rules) and may ask the books a question through `Lookup` (the rate a
refunded charge was booked at). An entry is idempotent by its source event id, and a
booking of a balance transaction is unique by the transaction's id, so an event and
reconciliation's healing can never book the same money twice.

Adding a producer = one `Source` in `SOURCES` (stream, subjects, translators, the types it
publishes that move no money) and its posting rules; nothing else in the ledger changes.

The ledger never guesses: an envelope from a source it does not follow, of a type its source
does not declare, or on another source's consumer is a `RefusedEvent`. That failure is
permanent (no redelivery makes the envelope bookable): the consumer redelivers it its bounded
number of times and dead-letters it, with this error's message (naming the source and the
type) in `Payplane-Dlq-Error`; the handler logs it at ERROR too. Nothing is booked or claimed,
so a dead letter replayed once the ledger knows its type is booked then.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from payplane.checkout.v1 import events_pb2 as checkout_events
from payplane.events.v1 import envelope_pb2

from ..domain.entries import JournalEntry, LedgerError
from ..domain.money import parse_rate
from ..domain.rules import (
    Settlement,
    dispute_movement,
    payment_refund_failed,
    payment_refunded,
    payment_succeeded,
)

__all__ = ["SOURCES", "Lookup", "RefusedEvent", "Source", "Translator", "entries_for", "source_for"]


class RefusedEvent(LedgerError):
    """An envelope the ledger cannot tell the meaning of (a permanent failure)."""


class Lookup(Protocol):
    async def charge_rate(self, payment_id: str) -> Decimal | None: ...


Translator = Callable[[envelope_pb2.Envelope, Lookup], Awaitable[list[JournalEntry]]]


@dataclass(frozen=True)
class Source:
    name: str  # the producing service
    stream: str
    stream_subjects: tuple[str, ...]
    # durable consumer name -> filter subject (one durable per filter, never renamed)
    consumers: Mapping[str, str]
    translators: Mapping[str, Translator]
    # Types the producer publishes on those subjects that move no money: booked as nothing.
    no_money: frozenset[str] = frozenset()

    def knows(self, type_: str) -> bool:
        return type_ in self.translators or type_ in self.no_money


def _settlement(s: checkout_events.Settlement) -> Settlement:
    return Settlement(
        balance_transaction_id=s.balance_transaction_id,
        currency=s.gross.currency,
        gross=s.gross.amount_minor,
        fee=s.fee.amount_minor,
        net=s.net.amount_minor,
        exchange_rate=parse_rate(s.exchange_rate),
    )


async def _payment_succeeded(envelope: envelope_pb2.Envelope, _: Lookup) -> list[JournalEntry]:
    paid = checkout_events.PaymentSucceeded.FromString(envelope.payload)
    if not paid.HasField("settlement"):
        raise ValueError(f"{envelope.event_id}: payment.succeeded without its settlement")
    refs = {"charge": paid.stripe_charge_id, "payment_intent": paid.stripe_payment_intent_id}
    return [
        payment_succeeded(envelope.event_id, paid.payment_id, _settlement(paid.settlement), refs)
    ]


async def _payment_refunded(envelope: envelope_pb2.Envelope, books: Lookup) -> list[JournalEntry]:
    refunded = checkout_events.PaymentRefunded.FromString(envelope.payload)
    if not refunded.HasField("settlement"):
        raise ValueError(f"{envelope.event_id}: payment.refunded without its settlement")
    s = _settlement(refunded.settlement)
    rate = await books.charge_rate(refunded.payment_id) if s.exchange_rate is not None else None
    return [
        payment_refunded(
            envelope.event_id,
            refunded.payment_id,
            refunded.refund_id,
            s,
            {"charge": refunded.stripe_charge_id, "stripe_refund": refunded.stripe_refund_id},
            presentment=(refunded.amount.amount_minor, refunded.amount.currency),
            charge_rate=rate,
        )
    ]


async def _payment_refund_failed(
    envelope: envelope_pb2.Envelope, books: Lookup
) -> list[JournalEntry]:
    """Stripe failed or canceled a refund and returned the funds: the refund's effect is
    reversed with the `refund_failure` balance transaction that returned them. Without one
    (Stripe gave none yet) nothing is booked here; reconciliation books the transaction from
    Stripe's record once it appears."""
    failed = checkout_events.PaymentRefundFailed.FromString(envelope.payload)
    if not failed.HasField("settlement") or not failed.settlement.balance_transaction_id:
        return []
    s = _settlement(failed.settlement)
    rate = await books.charge_rate(failed.payment_id) if s.exchange_rate is not None else None
    refs = {
        "charge": failed.stripe_charge_id,
        "stripe_refund": failed.stripe_refund_id,
        "refund_status": failed.status,
        "failure_reason": failed.failure_reason,
    }
    return [
        payment_refund_failed(
            envelope.event_id,
            failed.payment_id,
            failed.refund_id,
            s,
            {k: v for k, v in refs.items() if v},
            presentment=(failed.amount.amount_minor, failed.amount.currency),
            charge_rate=rate,
        )
    ]


async def _dispute(envelope: envelope_pb2.Envelope, _: Lookup) -> list[JournalEntry]:
    """funds_withdrawn / funds_reinstated move money; opened and closed do not."""
    update = checkout_events.DisputeUpdated.FromString(envelope.payload)
    if not update.HasField("settlement") or not update.settlement.balance_transaction_id:
        return []
    refs = {"charge": update.stripe_charge_id, "payment": update.payment_id}
    return [
        dispute_movement(
            envelope.event_id,
            f"checkout.{envelope.type}",
            update.dispute_id,
            _settlement(update.settlement),
            {k: v for k, v in refs.items() if v},
        )
    ]


CHECKOUT = Source(
    name="checkout",
    stream="CHECKOUT",
    stream_subjects=("checkout.>",),
    consumers={
        "ledger-checkout": "checkout.payment.>",
        "ledger-checkout-disputes": "checkout.dispute.>",
    },
    translators={
        "payment.succeeded": _payment_succeeded,
        "payment.refunded": _payment_refunded,
        "payment.refund_failed": _payment_refund_failed,
        "dispute.funds_withdrawn": _dispute,
        "dispute.funds_reinstated": _dispute,
    },
    no_money=frozenset({"payment.failed", "dispute.opened", "dispute.closed"}),
)
SOURCES: tuple[Source, ...] = (CHECKOUT,)
_BY_NAME = {s.name: s for s in SOURCES}
_BY_CONSUMER = {durable: s for s in SOURCES for durable in s.consumers}


def _shown(value: str) -> str:
    """A producer's string as an error shows it: quoted, and bounded."""
    return repr(value if len(value) <= 64 else value[:64] + "...")


def source_for(envelope: envelope_pb2.Envelope, consumer: str | None = None) -> Source:
    """The source whose contract covers the envelope; RefusedEvent when none does (an
    unknown source or type, or a source other than the one `consumer` follows)."""
    source_name, type_ = _shown(envelope.source), _shown(envelope.type)
    what = f"event {_shown(envelope.event_id)} (source {source_name}, type {type_})"
    source = _BY_NAME.get(envelope.source)
    if source is None:
        raise RefusedEvent(
            f"{what}: unknown source; the ledger follows {', '.join(sorted(_BY_NAME))}"
        )
    follows = _BY_CONSUMER.get(consumer or "")
    if follows is not None and follows is not source:
        raise RefusedEvent(f"{what}: arrived on {follows.name}'s consumer {consumer}")
    if not source.knows(envelope.type):
        raise RefusedEvent(f"{what}: unknown type for {source.name}")
    return source


async def entries_for(
    envelope: envelope_pb2.Envelope, books: Lookup, consumer: str | None = None
) -> list[JournalEntry]:
    """The entries an event makes ([] for facts that move no money); RefusedEvent for an
    envelope no source's contract covers."""
    translate = source_for(envelope, consumer).translators.get(envelope.type)
    return [] if translate is None else await translate(envelope, books)
