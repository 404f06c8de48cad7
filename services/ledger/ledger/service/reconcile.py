"""Reconciliation, orchestrated: load the facts, let the domain decide, write, each step on
its own explicit transaction.

A run, in order:
1. import (unless skipped): balance transactions, pending refresh, payouts, their contents;
2. book from Stripe's view what no service publishes yet: payout debits and failures (their
   balance transactions), payouts paid (in transit -> bank); and settlement (pending ->
   available) of every booked transaction Stripe reports available;
3. match: the set-based queries of `adapters.recon_facts` bring back only what differs, and
   `domain.matching` classifies each (kinds, evidence, certainty, the correcting entry);
4. record each finding by its stable key, so a re-run finds the same record; heal what the
   policy allows (an adjusting entry linked to the discrepancy, audited, in the transaction
   that records it); queue the rest;
5. settle what healing booked; tie out per currency (`domain.tie_out`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from payplane.grpckit.errors import FailedPrecondition, InvalidArgument, NotFound

from ..adapters.discrepancy_store import DiscrepancyStore, StoredDiscrepancy
from ..adapters.journal import Journal
from ..adapters.recon_facts import ReconFacts
from ..adapters.recon_runs import RunStore
from ..adapters.stripe_mirror import StripeMirror
from ..domain.accounts import STRIPE_BALANCE
from ..domain.discrepancies import SETTLED_BY_HUMAN, HealingPolicy
from ..domain.entries import JournalEntry
from ..domain.matching import (
    Finding,
    approved_correction,
    check_payout,
    check_pricing,
    check_rate,
    check_unmatched_booking,
    classify_transaction,
    reversal_of_unknown,
)
from ..domain.pricing import PricingModel
from ..domain.rules import from_balance_transaction, payout_paid, settlement
from ..domain.tie_out import balance_by_currency, tie_out
from .importer import Importer, ImportResult

__all__ = ["Finding", "Reconciler", "RunSummary"]

log = logging.getLogger("ledger.reconcile")
BATCH = 2000
_RESOLUTIONS = {"accept": "resolved", "dismiss": "dismissed", "heal": "healed"}


@dataclass
class RunSummary:
    imported: ImportResult = field(default_factory=ImportResult)
    matched: int = 0
    kinds: dict[str, dict[str, int]] = field(default_factory=dict)
    amounts: dict[str, int] = field(default_factory=dict)
    tie_out: list[dict[str, Any]] = field(default_factory=list)
    found: int = 0
    closing_seq: int = 0

    def count(self, kind: str, what: str) -> None:
        self.kinds.setdefault(kind, {"found": 0, "healed": 0, "queued": 0})[what] += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "balance_transactions_imported": self.imported.balance_transactions,
            "payouts_imported": self.imported.payouts,
            "matched": self.matched,
            "kinds": self.kinds,
            "amounts": self.amounts,
            "tie_out": self.tie_out,
            "found": self.found,
            "closing_seq": self.closing_seq,
        }


def _now() -> datetime:
    return datetime.now(UTC)


class Reconciler:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        importer: Importer | None,
        *,
        pricing: PricingModel | None = None,
        policy: HealingPolicy | None = None,
    ) -> None:
        self.sessions = sessions
        self.importer = importer
        self.pricing = pricing or PricingModel()
        self.policy = policy or HealingPolicy()
        self._lock = asyncio.Lock()  # one run at a time per process
        self._tasks: set[asyncio.Task[None]] = set()
        self.last_import_started: datetime | None = None

    # -- runs ----------------------------------------------------------------------------------
    async def start(
        self,
        *,
        mode: str = "batch",
        since: int | None = None,
        until: int | None = None,
        skip_import: bool = False,
        backfill: bool = False,
    ) -> str:
        """Record a run and carry it out in the background; returns its id at once."""
        if since is not None and until is not None and until <= since:
            raise InvalidArgument("until: must be after since")
        if backfill and since is None:
            raise InvalidArgument("backfill: needs since")
        run_id = await self._new_run(mode, since, until)
        task = asyncio.create_task(
            self._carry_out(run_id, since, until, skip_import, backfill), name=f"recon-{run_id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return run_id

    async def run(
        self,
        *,
        mode: str = "batch",
        since: int | None = None,
        until: int | None = None,
        skip_import: bool = False,
        backfill: bool = False,
    ) -> str:
        """Record a run and carry it out before returning its id."""
        run_id = await self._new_run(mode, since, until)
        await self._carry_out(run_id, since, until, skip_import, backfill)
        return run_id

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _new_run(self, mode: str, since: int | None, until: int | None) -> str:
        async with self.sessions.begin() as session:
            return await RunStore(session).add(mode, since, until)

    async def _carry_out(
        self, run_id: str, since: int | None, until: int | None, skip_import: bool, backfill: bool
    ) -> None:
        async with self._lock:
            try:
                summary = await self._reconcile(run_id, since, until, skip_import, backfill)
            except Exception as exc:
                log.exception("reconciliation run %s failed", run_id)
                async with self.sessions.begin() as session:
                    await RunStore(session).failed(run_id, f"{type(exc).__name__}: {exc}")
                return
            async with self.sessions.begin() as session:
                await RunStore(session).completed(run_id, summary.to_json())
            log.info(
                "reconciliation %s: %d matched, %d discrepancies %s",
                run_id, summary.matched, summary.found, summary.kinds,
            )  # fmt: skip

    async def _reconcile(
        self, run_id: str, since: int | None, until: int | None, skip_import: bool, backfill: bool
    ) -> RunSummary:
        summary = RunSummary()
        stripe_balance: dict[str, dict[str, int]] | None = None
        if self.importer is not None and not skip_import:
            self.last_import_started = _now()
            if backfill:
                await self.importer.balance_transactions(since=since, until=until)
            summary.imported = await self.importer.run()
            stripe_balance = balance_by_currency(await self.importer.reader.balance())
        await self.book_from_stripe()
        findings = await self.match(since, until)
        summary.matched = await self.count_transactions(since, until) - len(
            {f.subject for f in findings if f.subject.startswith("txn_")}
        )
        await self._record(run_id, findings, summary)
        await self.book_settlements()
        summary.tie_out, summary.closing_seq = await self.tie_out(stripe_balance)
        return summary

    # -- booking from Stripe's view ----------------------------------------------------------
    async def book_from_stripe(self) -> int:
        """Payout debits and failures, payouts paid, settlements (idempotent)."""
        async with self.sessions() as session:
            unbooked = await ReconFacts(session).unbooked_payout_transactions()
        batch = [
            entry
            for bt in unbooked
            if (entry := from_balance_transaction(bt, f"stripe:{bt.id}", "stripe.payout"))
            is not None
        ]
        made = await self._append(batch)
        async with self.sessions() as session:
            paid = await ReconFacts(session).paid_payouts_not_in_bank()
        made += await self._append(
            [payout_paid(p.id, p.debited, p.currency, p.balance_transaction_id)
             for p in paid if p.debited]
        )  # fmt: skip
        made += await self.book_settlements()
        return made

    async def book_settlements(self) -> int:
        """Pending -> available for every booked transaction Stripe reports available."""
        made = 0
        after = ""
        while True:
            async with self.sessions() as session:
                rows = await ReconFacts(session).unsettled(after, BATCH)
            if not rows:
                return made
            made += await self._append(
                [settlement(r.id, r.currency, r.net, r.source) for r in rows]
            )
            after = rows[-1].id

    async def _append(self, batch: Sequence[JournalEntry]) -> int:
        made = 0
        for i in range(0, len(batch), BATCH):
            async with self.sessions.begin() as session:
                ids = await Journal(session).append_many(batch[i : i + BATCH])
            made += sum(1 for x in ids if x)
        return made

    # -- matching ------------------------------------------------------------------------------
    async def count_transactions(self, since: int | None = None, until: int | None = None) -> int:
        """Stripe's balance transactions in the window, as imported."""
        async with self.sessions() as session:
            return await ReconFacts(session).count_transactions(since, until)

    async def match(self, since: int | None = None, until: int | None = None) -> list[Finding]:
        """Every discrepancy between Stripe's view and the books in the window."""
        findings: list[Finding] = []
        async with self.sessions() as session:
            facts = ReconFacts(session)
            async for bt, booked in facts.differing_transactions(since, until):
                findings.extend(classify_transaction(bt, booked))
            async for charge in facts.charges_off_model(since, until, self.pricing):
                if (found := check_pricing(charge, self.pricing)) is not None:
                    findings.append(found)
            for converted in await facts.misconverted(since, until):
                if (found := check_rate(converted)) is not None:
                    findings.append(found)
            # Anything booked after the last import started may simply not be imported yet.
            cutoff = self.last_import_started or await facts.last_import_at()
            if cutoff is not None:
                for booking in await facts.bookings_unknown_to_stripe(cutoff):
                    if (found := check_unmatched_booking(booking)) is not None:
                        findings.append(found)
            for payout in await facts.payouts(since, until):
                if (found := check_payout(payout)) is not None:
                    findings.append(found)
        return findings

    # -- recording and healing -------------------------------------------------------------------
    async def _record(self, run_id: str, findings: list[Finding], summary: RunSummary) -> None:
        for f in findings:
            async with self.sessions.begin() as session:
                outcome = await self._record_one(session, run_id, f)
            if outcome is None:
                continue
            summary.found += 1
            summary.count(f.kind, "found")
            summary.amounts[f.currency] = summary.amounts.get(f.currency, 0) + abs(f.amount)
            summary.count(f.kind, outcome)

    async def _record_one(self, session: AsyncSession, run_id: str, f: Finding) -> str | None:
        """Record one finding and heal or queue it; its outcome ("healed" or "queued"), or
        None when a human already settled it (finding it again changes nothing)."""
        store = DiscrepancyStore(session)
        known = await store.by_key(f.key)
        if known is not None and known.status in SETTLED_BY_HUMAN:
            return None
        evidence = {k: str(v) for k, v in f.evidence.items()}
        if known is None:
            disc_id = await store.add(f, run_id, evidence)
        else:
            disc_id = known.id
            await store.found_again(disc_id, run_id, evidence)
        if f.fix is not None and f.healable(self.policy):
            entry_id = (await Journal(session).append_many([_tag(f.fix, disc_id, run_id)]))[0]
            if entry_id is not None:
                await store.healed(disc_id, entry_id, "reconciler", run_id)
            else:  # booked meanwhile (its event arrived): nothing left to correct
                await store.resolved_meanwhile(disc_id, run_id, "booked meanwhile by its own event")
            return "healed"
        if known is None:
            await store.audit(disc_id, "reconciler", "queued", {"run": run_id})
        return "queued"

    async def resolve(
        self, disc_id: str, resolution: str, reason: str, actor: str
    ) -> dict[str, Any]:
        if resolution not in _RESOLUTIONS:
            raise InvalidArgument("resolution: one of accept, dismiss, heal")
        if not reason.strip():
            raise InvalidArgument("reason: required (it is kept in the audit trail)")
        async with self.sessions.begin() as session:
            store = DiscrepancyStore(session)
            found = await store.get(disc_id)
            if found is None:
                raise NotFound(f"discrepancy {disc_id} not found")
            if found.status != "open":
                raise FailedPrecondition(f"discrepancy {disc_id} is {found.status}, not open")
            detail: dict[str, Any] = {"resolution": resolution, "reason": reason}
            entry_id: str | None = None
            if resolution == "heal":
                fix = await self._correction_for(session, found)
                if fix is None:
                    raise FailedPrecondition(
                        f"a {found.kind} has no correction the ledger can derive: accept or dismiss"
                    )
                entry_id = (await Journal(session).append_many([_tag(fix, disc_id, "human")]))[0]
                if entry_id is None:
                    raise FailedPrecondition("the correction is already booked")
                detail["entry"] = entry_id
            await store.settle(
                disc_id, status=_RESOLUTIONS[resolution], actor=actor, reason=reason,
                entry_id=entry_id, detail=detail,
            )  # fmt: skip
            resolved = await store.columns(disc_id)
        assert resolved is not None  # found above, in this transaction
        return resolved

    async def _correction_for(
        self, session: AsyncSession, found: StoredDiscrepancy
    ) -> JournalEntry | None:
        """A human may approve a correction the policy would not make on its own (an amount
        mismatch, a large one): derived again from Stripe's transaction, never from the
        request."""
        if found.kind == "missing_in_stripe":  # reverse the booking Stripe has no record of
            stored = await Journal(session).get(str(found.evidence.get("entry", "")))
            if stored is None:
                return None
            return reversal_of_unknown(stored.id, stored.entry, found.subject)
        bt = await StripeMirror(session).get_bt(found.subject)
        if bt is None:
            return None
        return approved_correction(found.kind, bt, await ReconFacts(session).ledger_view(bt.id))

    # -- tie-out -------------------------------------------------------------------------------
    async def tie_out(
        self, stripe_balance: dict[str, dict[str, int]] | None
    ) -> tuple[list[dict[str, Any]], int]:
        async with self.sessions() as session:
            journal = Journal(session)
            closing_seq, _ = await journal.head()
            opening_seq = await RunStore(session).last_closing_seq()
            bal = await journal.stored_balances()
            if stripe_balance is None:  # no live balance: Stripe's, as imported
                stripe_balance = await ReconFacts(session).imported_balance()
            currencies = sorted({c for (a, c) in bal if a in STRIPE_BALANCE} | set(stripe_balance))
            out = []
            for cur in currencies:
                opening = 0
                for account in STRIPE_BALANCE:
                    opening += (await journal.balance_as_of(account, cur, seq=opening_seq))[0]
                out.append(
                    tie_out(
                        cur,
                        opening=opening,
                        ledger_pending=bal.get(("stripe_pending", cur), 0),
                        ledger_available=bal.get(("stripe_available", cur), 0),
                        stripe=stripe_balance.get(cur),
                    )
                )
        return out, closing_seq


def _tag(entry: JournalEntry, disc_id: str, run_id: str) -> JournalEntry:
    return JournalEntry(
        source_event_id=entry.source_event_id,
        source_type=entry.source_type,
        source_id=entry.source_id,
        description=entry.description,
        postings=entry.postings,
        refs={**entry.refs, "discrepancy": disc_id, "run": run_id},
        link=entry.link,
    )
