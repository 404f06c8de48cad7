"""The gRPC servicer: translate protobuf to ledger queries and back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from payplane.common.v1 import common_pb2
from payplane.grpckit import PageTokens, current_actor, fields
from payplane.grpckit.errors import FailedPrecondition, InvalidArgument, NotFound
from payplane.ledger.v1 import ledger_pb2, ledger_pb2_grpc

from ..adapters.journal import StoredEntry
from ..service.handlers import Ledger
from ..service.queries import Queries
from ..service.reconcile import Reconciler

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
        seq=stored.seq,
        hash=stored.hash,
    )


def _ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


SERVICE = "payplane.ledger.v1.LedgerService"
MAX_FILTER = 255  # account names, source ids, kinds, statuses: all far shorter
MAX_REASON = 1_000  # a resolution's reason, kept in the audit trail


def _unix(request: Message, field: str) -> int | None:
    when = fields.optional_time(request, field)
    return None if when is None else int(when.timestamp())


def _stored_time(unix: int | None) -> datetime | None:
    """A run's window as stored; a value out of range (accepted before it was checked) is
    shown as unset rather than failing every read of the run."""
    if unix is None or not fields.EARLIEST <= unix <= fields.LATEST:
        return None
    return datetime.fromtimestamp(unix, UTC)


def discrepancy_to_proto(d: dict[str, Any]) -> ledger_pb2.Discrepancy:
    return ledger_pb2.Discrepancy(
        id=d["id"],
        kind=d["kind"],
        status=d["status"],
        subject=d["subject"],
        amount=common_pb2.Money(amount_minor=int(d["amount"]), currency=d["currency"]),
        evidence={str(k): str(v) for k, v in (d["evidence"] or {}).items()},
        first_run_id=d["first_run_id"],
        last_run_id=d["last_run_id"],
        adjusting_entry_id=d["adjusting_entry_id"] or "",
        resolved_by=d["resolved_by"] or "",
        resolution_reason=d["resolution_reason"] or "",
        created_at=_ts(d["created_at"]),
        updated_at=_ts(d["updated_at"]),
    )


def run_to_proto(r: dict[str, Any]) -> ledger_pb2.ReconciliationRun:
    s = r["summary"] or {}
    since, until = _stored_time(r["since"]), _stored_time(r["until"])
    return ledger_pb2.ReconciliationRun(
        id=r["id"],
        status=r["status"],
        mode=r["mode"],
        since=_ts(since),
        until=_ts(until),
        started_at=_ts(r["started_at"]),
        finished_at=_ts(r["finished_at"]),
        balance_transactions_imported=int(s.get("balance_transactions_imported", 0)),
        payouts_imported=int(s.get("payouts_imported", 0)),
        balance_transactions_matched=int(s.get("matched", 0)),
        kinds=[
            ledger_pb2.KindCount(kind=k, found=v["found"], healed=v["healed"], queued=v["queued"])
            for k, v in sorted((s.get("kinds") or {}).items())
        ],
        discrepancy_amounts=[
            common_pb2.Money(amount_minor=int(v), currency=c)
            for c, v in sorted((s.get("amounts") or {}).items())
        ],
        tie_out=[ledger_pb2.TieOut(**t) for t in s.get("tie_out") or []],
        error=r["error"] or "",
        discrepancies_found=int(s.get("found", 0)),
    )


class LedgerServicer(ledger_pb2_grpc.LedgerServiceServicer):
    def __init__(
        self,
        ledger: Ledger,
        reconciler: Reconciler | None = None,
        queries: Queries | None = None,
        *,
        page_tokens: PageTokens,
    ) -> None:
        self.ledger = ledger
        self.reconciler = reconciler
        self.queries = queries
        self.tokens = page_tokens

    def _recon(self) -> tuple[Reconciler, Queries]:
        if self.reconciler is None or self.queries is None:
            raise FailedPrecondition("reconciliation is not configured (no Stripe key)")
        return self.reconciler, self.queries

    async def GetBalance(
        self, request: ledger_pb2.GetBalanceRequest, context: Ctx
    ) -> ledger_pb2.AccountBalance:
        balance, count = await self.ledger.balance(
            request.account,
            request.currency,
            at=fields.optional_time(request, "as_of"),
            seq=request.as_of_seq or None,
        )
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
        fields.text(request.account, "account", MAX_FILTER)
        fields.text(request.source_id, "source_id", MAX_FILTER)
        scope = PageTokens.scope(f"/{SERVICE}/ListEntries", request.account, request.source_id)
        items, cursor = await self.ledger.entries(
            account=request.account,
            source_id=request.source_id,
            page_size=request.page.page_size,
            page_token=self.tokens.open(scope, request.page.page_token),
        )
        token = self.tokens.seal(scope, cursor)
        return ledger_pb2.ListEntriesResponse(
            entries=[entry_to_proto(e) for e in items],
            page=common_pb2.PageResponse(next_page_token=token, has_more=bool(token)),
        )

    async def GetEntry(
        self, request: ledger_pb2.GetEntryRequest, context: Ctx
    ) -> ledger_pb2.JournalEntry:
        fields.object_id(request.entry_id, "entry_id")
        return entry_to_proto(await self.ledger.entry(request.entry_id))

    async def GetAccountStatement(
        self, request: ledger_pb2.GetAccountStatementRequest, context: Ctx
    ) -> ledger_pb2.AccountStatement:
        if request.page.page_size < 0:
            raise InvalidArgument("page.page_size: must not be negative")
        since = fields.optional_time(request, "since")
        until = fields.optional_time(request, "until")
        scope = PageTokens.scope(
            f"/{SERVICE}/GetAccountStatement",
            request.account,
            request.currency.lower(),
            since,
            until,
        )
        st = await self.ledger.statement(
            request.account,
            request.currency,
            since=since,
            until=until,
            page_size=request.page.page_size,
            page_token=self.tokens.open(scope, request.page.page_token),
        )
        next_token = self.tokens.seal(scope, st.next_token)

        def money(v: int) -> common_pb2.Money:
            return common_pb2.Money(amount_minor=v, currency=st.currency)

        return ledger_pb2.AccountStatement(
            account=st.account,
            opening_balance=money(st.opening),
            closing_balance=money(st.closing),
            debits=money(st.debits),
            credits=money(st.credits),
            lines=[
                ledger_pb2.StatementLine(
                    seq=row.seq,
                    entry_id=row.entry_id,
                    booked_at=_ts(row.created_at),
                    source_type=row.source_type,
                    source_id=row.source_id,
                    description=row.description,
                    amount=money(row.amount),
                    running_balance=money(running),
                )
                for row, running in st.lines
            ],
            page=common_pb2.PageResponse(next_page_token=next_token, has_more=bool(next_token)),
        )

    async def RunReconciliation(
        self, request: ledger_pb2.RunReconciliationRequest, context: Ctx
    ) -> ledger_pb2.RunReconciliationResponse:
        since, until = _unix(request, "since"), _unix(request, "until")
        reconciler, _ = self._recon()
        run_id = await reconciler.start(
            mode="batch",
            since=since,
            until=until,
            skip_import=request.skip_import,
            backfill=request.backfill,
        )
        return ledger_pb2.RunReconciliationResponse(run_id=run_id)

    async def GetReconciliationRun(
        self, request: ledger_pb2.GetReconciliationRunRequest, context: Ctx
    ) -> ledger_pb2.ReconciliationRun:
        fields.object_id(request.run_id, "run_id")
        _, queries = self._recon()
        run = await queries.run(request.run_id)
        if run is None:
            raise NotFound(f"reconciliation run {request.run_id} not found")
        return run_to_proto(run)

    async def ListDiscrepancies(
        self, request: ledger_pb2.ListDiscrepanciesRequest, context: Ctx
    ) -> ledger_pb2.ListDiscrepanciesResponse:
        if request.page.page_size < 0:
            raise InvalidArgument("page.page_size: must not be negative")
        fields.text(request.kind, "kind", MAX_FILTER)
        fields.text(request.status, "status", MAX_FILTER)
        fields.object_id(request.run_id, "run_id", required=False)
        _, queries = self._recon()
        scope = PageTokens.scope(
            f"/{SERVICE}/ListDiscrepancies", request.kind, request.status, request.run_id
        )
        items, cursor = await queries.discrepancies(
            kind=request.kind,
            status=request.status,
            run_id=request.run_id,
            page_size=request.page.page_size,
            page_token=self.tokens.open(scope, request.page.page_token),
        )
        token = self.tokens.seal(scope, cursor)
        return ledger_pb2.ListDiscrepanciesResponse(
            discrepancies=[discrepancy_to_proto(d) for d in items],
            page=common_pb2.PageResponse(next_page_token=token, has_more=bool(token)),
        )

    async def GetDiscrepancy(
        self, request: ledger_pb2.GetDiscrepancyRequest, context: Ctx
    ) -> ledger_pb2.DiscrepancyDetail:
        fields.object_id(request.discrepancy_id, "discrepancy_id")
        _, queries = self._recon()
        found = await queries.discrepancy(request.discrepancy_id)
        if found is None:
            raise NotFound(f"discrepancy {request.discrepancy_id} not found")
        return ledger_pb2.DiscrepancyDetail(
            discrepancy=discrepancy_to_proto(found),
            audit=[
                ledger_pb2.DiscrepancyAuditEntry(
                    at=_ts(a["at"]),
                    actor=a["actor"],
                    action=a["action"],
                    detail={str(k): str(v) for k, v in (a["detail"] or {}).items()},
                )
                for a in await queries.audit(request.discrepancy_id)
            ],
        )

    async def ResolveDiscrepancy(
        self, request: ledger_pb2.ResolveDiscrepancyRequest, context: Ctx
    ) -> ledger_pb2.Discrepancy:
        fields.object_id(request.discrepancy_id, "discrepancy_id")
        fields.text(request.reason, "reason", MAX_REASON)
        reconciler, _ = self._recon()
        resolved = await reconciler.resolve(
            request.discrepancy_id,
            request.resolution,
            request.reason,
            current_actor(context) or "unknown",
        )
        return discrepancy_to_proto(resolved)
