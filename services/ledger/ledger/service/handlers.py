"""Posting entries from other services' events, exactly once, and reading the books."""

from __future__ import annotations

import logging

from opentelemetry import trace
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from payplane.checkout.v1 import events_pb2 as checkout_events
from payplane.events import Inbox
from payplane.events.v1 import envelope_pb2
from payplane.grpckit.errors import InvalidArgument, NotFound

from ..adapters.journal import Journal, StoredEntry
from ..domain.entries import JournalEntry
from ..domain.rules import Settlement, payment_refunded, payment_succeeded

__all__ = ["CONSUMER", "Ledger"]

log = logging.getLogger("ledger")
_tracer = trace.get_tracer("ledger")
CONSUMER = "ledger-checkout"


def _settlement(s: checkout_events.Settlement) -> Settlement:
    return Settlement(
        balance_transaction_id=s.balance_transaction_id,
        currency=s.gross.currency,
        gross=s.gross.amount_minor,
        fee=s.fee.amount_minor,
        net=s.net.amount_minor,
    )


def entry_for(envelope: envelope_pb2.Envelope) -> JournalEntry | None:
    """The entry an event makes, or None for facts that move no money."""
    if envelope.type == "payment.succeeded":
        paid = checkout_events.PaymentSucceeded.FromString(envelope.payload)
        if not paid.HasField("settlement"):
            raise ValueError(f"{envelope.event_id}: payment.succeeded without its settlement")
        return payment_succeeded(
            envelope.event_id,
            paid.payment_id,
            _settlement(paid.settlement),
            {"charge": paid.stripe_charge_id, "payment_intent": paid.stripe_payment_intent_id},
        )
    if envelope.type == "payment.refunded":
        refunded = checkout_events.PaymentRefunded.FromString(envelope.payload)
        if not refunded.HasField("settlement"):
            raise ValueError(f"{envelope.event_id}: payment.refunded without its settlement")
        return payment_refunded(
            envelope.event_id,
            refunded.payment_id,
            refunded.refund_id,
            _settlement(refunded.settlement),
            {"charge": refunded.stripe_charge_id, "stripe_refund": refunded.stripe_refund_id},
        )
    return None


class Ledger:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], inbox: Inbox) -> None:
        self.sessions = sessions
        self.inbox = inbox

    async def handle_event(self, envelope: envelope_pb2.Envelope) -> str | None:
        """Book the event's entry once: the inbox claim and the entry commit together."""
        entry = entry_for(envelope)
        with _tracer.start_as_current_span(
            "ledger.post", attributes={"ledger.source_event_id": envelope.event_id}
        ) as span:
            entry_id = await self._post(envelope, entry)
            span.set_attribute("ledger.entry_id", entry_id or "")
        return entry_id

    async def _post(
        self, envelope: envelope_pb2.Envelope, entry: JournalEntry | None
    ) -> str | None:
        async with self.sessions.begin() as session:
            if not await self.inbox.claim(session, CONSUMER, envelope.event_id):
                return None  # already applied (a redelivery or a duplicate)
            if entry is None:
                return None
            journal = Journal(session)
            if await journal.exists(entry.source_event_id):
                return None
            entry_id = await journal.append(entry)
        log.info("posted %s for %s %s", entry_id, envelope.type, envelope.subject_id)
        return entry_id

    async def balance(self, account: str, currency: str) -> tuple[int, int]:
        if not account or not currency:
            raise InvalidArgument("account and currency are required")
        async with self.sessions() as session:
            return await Journal(session).balance(account, currency.lower())

    async def entry(self, entry_id: str) -> StoredEntry:
        async with self.sessions() as session:
            found = await Journal(session).get(entry_id)
        if found is None:
            raise NotFound(f"entry {entry_id} not found")
        return found

    async def entries(
        self, *, account: str, source_id: str, page_size: int, page_token: str
    ) -> tuple[list[StoredEntry], str]:
        size = min(max(page_size or 50, 1), 500)
        after: int | None = None
        if page_token:
            try:
                after = int(page_token)
            except ValueError:
                raise InvalidArgument("page.page_token: not a token this service issued") from None
        async with self.sessions() as session:
            items, more = await Journal(session).page(
                account=account, source_id=source_id, size=size, after_seq=after
            )
        return items, str(items[-1].seq) if more and items else ""
