"""The gRPC servicer: translate protobuf to ledger queries and back."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from payplane.common.v1 import common_pb2
from payplane.grpckit.errors import InvalidArgument
from payplane.ledger.v1 import ledger_pb2, ledger_pb2_grpc

from ..adapters.journal import StoredEntry
from ..service.handlers import Ledger

__all__ = ["LedgerServicer", "entry_to_proto"]

Ctx = grpc.aio.ServicerContext[Any, Any]


def entry_to_proto(stored: StoredEntry) -> ledger_pb2.JournalEntry:
    e = stored.entry
    created = Timestamp()
    created.FromDatetime(stored.created_at)
    return ledger_pb2.JournalEntry(
        id=stored.id,
        source_event_id=e.source_event_id,
        source_type=e.source_type,
        source_id=e.source_id,
        description=e.description,
        postings=[
            ledger_pb2.Posting(
                account=p.account,
                amount=common_pb2.Money(amount_minor=p.amount, currency=p.currency),
            )
            for p in e.postings
        ],
        refs=e.refs,
        created_at=created,
    )


class LedgerServicer(ledger_pb2_grpc.LedgerServiceServicer):
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def GetBalance(
        self, request: ledger_pb2.GetBalanceRequest, context: Ctx
    ) -> ledger_pb2.AccountBalance:
        balance, count = await self.ledger.balance(request.account, request.currency)
        return ledger_pb2.AccountBalance(
            account=request.account,
            balance=common_pb2.Money(amount_minor=balance, currency=request.currency.lower()),
            entry_count=count,
        )

    async def ListEntries(
        self, request: ledger_pb2.ListEntriesRequest, context: Ctx
    ) -> ledger_pb2.ListEntriesResponse:
        if request.page.page_size < 0:
            raise InvalidArgument("page.page_size: must not be negative")
        items, token = await self.ledger.entries(
            account=request.account,
            source_id=request.source_id,
            page_size=request.page.page_size,
            page_token=request.page.page_token,
        )
        return ledger_pb2.ListEntriesResponse(
            entries=[entry_to_proto(e) for e in items],
            page=common_pb2.PageResponse(next_page_token=token, has_more=bool(token)),
        )

    async def GetEntry(
        self, request: ledger_pb2.GetEntryRequest, context: Ctx
    ) -> ledger_pb2.JournalEntry:
        if not request.entry_id:
            raise InvalidArgument("entry_id: required")
        return entry_to_proto(await self.ledger.entry(request.entry_id))
