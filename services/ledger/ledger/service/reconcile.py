"""Reconciliation: book what Stripe alone knows, match every balance transaction and payout
to the books, record discrepancies, heal the certain ones, tie out.

A run, in order:
1. import (unless skipped): balance transactions, pending refresh, payouts, their contents;
2. book from Stripe's view what no service publishes yet: payout debits and failures (their
   balance transactions), payouts paid (in transit -> bank); and settlement (pending ->
   available) of every booked transaction Stripe reports available;
3. match, set-based (a handful of SQL statements whatever the volume; only differences come
   back): the ledger's view of each balance transaction (the sum of what linked entries
   booked: gross, fee, settled) against Stripe's; fees against the pricing model; converted
   amounts against the transaction's own rate; ledger bookings with no Stripe transaction;
   payouts against their transaction, their contents and the ledger's movement;
4. record each finding by a stable key (kind + subject), so a re-run finds the same record;
   heal what the policy allows (an adjusting entry linked to the discrepancy, audited);
   queue the rest;
5. settle what healing booked; tie out per currency: opening + activity = closing (ledger's
   stripe_pending + stripe_available) = Stripe's balance.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from payplane.grpckit.errors import FailedPrecondition, InvalidArgument, NotFound

from ..adapters.journal import Journal
from ..adapters.stripe_mirror import StripeMirror, to_bt
from ..adapters.tables import (
    discrepancies,
    discrepancy_audit,
    entries,
    postings,
    recon_runs,
    stripe_bts,
)
from ..domain.accounts import STRIPE_BALANCE
from ..domain.discrepancies import HealingPolicy
from ..domain.entries import JournalEntry
from ..domain.pricing import PricingModel
from ..domain.rules import (
    adjustment,
    from_balance_transaction,
    payout_paid,
    settlement,
    unsettlement,
)
from .importer import Importer, ImportResult

__all__ = ["Finding", "Reconciler", "RunSummary"]

log = logging.getLogger("ledger.reconcile")
BATCH = 2000
PAYOUT_TYPES = ("payout", "payout_failure", "payout_cancel")


@dataclass
class Finding:
    kind: str
    subject: str
    currency: str
    amount: int
    evidence: dict[str, Any]
    certain: bool = False
    fix: JournalEntry | None = None  # the adjusting entry that heals it, when certain
    key_suffix: str = ""

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.subject}{self.key_suffix}"


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
        run_id = f"rr_{secrets.token_hex(10)}"
        async with self.sessions.begin() as session:
            await session.execute(
                insert(recon_runs).values(
                    id=run_id, mode=mode, status="running", since=since, until=until,
                    started_at=_now(), summary={},
                )
            )  # fmt: skip
        return run_id

    async def _carry_out(
        self, run_id: str, since: int | None, until: int | None, skip_import: bool, backfill: bool
    ) -> None:
        async with self._lock:
            try:
                summary = await self._reconcile(run_id, since, until, skip_import, backfill)
            except Exception as exc:
                log.exception("reconciliation run %s failed", run_id)
                async with self.sessions.begin() as session:
                    await session.execute(
                        update(recon_runs)
                        .where(recon_runs.c.id == run_id)
                        .values(
                            status="failed",
                            finished_at=_now(),
                            error=f"{type(exc).__name__}: {exc}",
                        )
                    )
                return
            async with self.sessions.begin() as session:
                await session.execute(
                    update(recon_runs)
                    .where(recon_runs.c.id == run_id)
                    .values(status="completed", finished_at=_now(), summary=summary.to_json())
                )
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
            stripe_balance = _balance_by_currency(await self.importer.reader.balance())
        await self.book_from_stripe()
        findings = await self.match(since, until)
        summary.matched = await self._count_matched(since, until) - len(
            {f.subject for f in findings if f.subject.startswith("txn_")}
        )
        await self._record(run_id, findings, summary)
        await self.book_settlements()
        summary.tie_out, summary.closing_seq = await self.tie_out(stripe_balance)
        return summary

    # -- booking from Stripe's view ----------------------------------------------------------
    async def book_from_stripe(self) -> int:
        """Payout debits and failures, payouts paid, settlements (idempotent)."""
        made = 0
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    text(
                        "SELECT s.* FROM stripe_balance_transactions s "
                        "LEFT JOIN bt_bookings b ON b.bt_id = s.id "
                        "WHERE b.bt_id IS NULL "
                        "AND s.type IN ('payout', 'payout_failure', 'payout_cancel') "
                        "ORDER BY s.created, s.id"
                    )
                )
            ).all()
        batch: list[JournalEntry] = []
        for row in rows:
            entry = from_balance_transaction(to_bt(row), f"stripe:{row.id}", "stripe.payout")
            if entry is not None:
                batch.append(entry)
        made += await self._append(batch)
        async with self.sessions() as session:
            paid = (
                await session.execute(
                    text(
                        "SELECT p.id, p.currency, bt.amount AS bt_amount, bt.id AS bt_id "
                        "FROM stripe_payouts p JOIN stripe_balance_transactions bt "
                        "ON bt.id = p.balance_transaction "
                        "WHERE p.status = 'paid' AND NOT EXISTS (SELECT 1 FROM journal_entries e "
                        "WHERE e.source_event_id = 'payout-paid:' || p.id)"
                    )
                )
            ).all()
        made += await self._append(
            [payout_paid(r.id, -int(r.bt_amount), r.currency, r.bt_id) for r in paid if r.bt_amount]
        )
        made += await self.book_settlements()
        return made

    async def book_settlements(self) -> int:
        """Pending -> available for every booked transaction Stripe reports available."""
        made = 0
        after = ""
        while True:
            async with self.sessions() as session:
                rows = (
                    await session.execute(
                        text(
                            "SELECT s.id, s.currency, s.net, s.source "
                            "FROM stripe_balance_transactions s "
                            "JOIN bt_bookings b ON b.bt_id = s.id "
                            "WHERE s.status = 'available' AND s.net != 0 AND s.id > :after "
                            "AND NOT EXISTS (SELECT 1 FROM journal_entries e "
                            "WHERE e.source_event_id = 'settle:' || s.id) "
                            "ORDER BY s.id LIMIT :n"
                        ),
                        {"after": after, "n": BATCH},
                    )
                ).all()
            if not rows:
                return made
            made += await self._append(
                [settlement(r.id, r.currency, int(r.net), r.source or "") for r in rows]
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
    def _window(
        self, since: int | None, until: int | None, alias: str = "s"
    ) -> tuple[str, dict[str, Any]]:
        clauses, params = [], {}
        if since is not None:
            clauses.append(f"{alias}.created >= :since")
            params["since"] = since
        if until is not None:
            clauses.append(f"{alias}.created < :until")
            params["until"] = until
        return (" AND " + " AND ".join(clauses)) if clauses else "", params

    async def _count_matched(self, since: int | None, until: int | None) -> int:
        where, params = self._window(since, until)
        async with self.sessions() as session:
            value = (
                await session.execute(
                    text(f"SELECT COUNT(*) FROM stripe_balance_transactions s WHERE 1=1{where}"),
                    params,
                )
            ).scalar_one()
        return int(value)

    async def match(self, since: int | None = None, until: int | None = None) -> list[Finding]:
        findings: list[Finding] = []
        findings += await self._match_transactions(since, until)
        findings += await self._check_pricing(since, until)
        findings += await self._check_rates(since, until)
        findings += await self._missing_in_stripe()
        findings += await self._check_payouts(since, until)
        return findings

    async def _match_transactions(self, since: int | None, until: int | None) -> list[Finding]:
        where, params = self._window(since, until)
        sql = (
            "SELECT s.*, l.bt_id AS l_id, l.g AS l_gross, l.f AS l_fee, l.st AS l_settled "
            "FROM stripe_balance_transactions s LEFT JOIN ("
            "  SELECT bt_id, SUM(COALESCE(bt_gross, 0)) AS g, SUM(COALESCE(bt_fee, 0)) AS f,"
            "         SUM(COALESCE(bt_settled, 0)) AS st"
            "  FROM journal_entries WHERE bt_id IS NOT NULL GROUP BY bt_id"
            ") l ON l.bt_id = s.id "
            "WHERE (l.bt_id IS NULL OR l.g != s.amount OR l.f != s.fee OR "
            "       l.st != CASE WHEN s.status = 'available' THEN s.net ELSE 0 END)"
            f"{where} ORDER BY s.created, s.id"
        )
        out: list[Finding] = []
        async with self.sessions() as session:
            result = await session.stream(text(sql), params)
            async for row in result:
                out.extend(self._classify(row))
        return out

    def _classify(self, row: Any) -> list[Finding]:
        bt = to_bt(row)
        evidence: dict[str, Any] = {
            "balance_transaction": bt.id,
            "type": bt.type,
            "reporting_category": bt.reporting_category,
            "source": bt.source,
            "stripe_amount": bt.amount,
            "stripe_fee": bt.fee,
            "stripe_net": bt.net,
            "stripe_status": bt.status,
            "exchange_rate": row.exchange_rate or "",
        }
        if row.l_id is None:
            dispute = bt.type == "adjustment" and bt.reporting_category in (
                "dispute",
                "dispute_reversal",
            )
            kind = "unbooked_dispute" if dispute else "missing_in_ledger"
            fix = from_balance_transaction(bt, f"heal:{kind}:{bt.id}", "reconciliation.healed")
            return [Finding(kind, bt.id, bt.currency, bt.net, evidence, fix is not None, fix)]
        g, f, st = int(row.l_gross), int(row.l_fee), int(row.l_settled)
        evidence |= {"ledger_amount": g, "ledger_fee": f, "ledger_settled": st}
        out: list[Finding] = []
        if g != bt.amount:
            converted = bt.exchange_rate is not None
            kind = "fx_mismatch" if converted else "amount_mismatch"
            account = "fx_gain_loss" if converted else ("refunds" if bt.amount < 0 else "revenue")
            fix = adjustment(
                f"heal:{kind}:{bt.id}:{g}",
                bt.id,
                bt.currency,
                gross_delta=bt.amount - g,
                gross_account=account,
                refs={"kind": kind},
                description=f"{kind}: {bt.id} booked {g}, Stripe moved {bt.amount}",
            )
            out.append(
                Finding(kind, bt.id, bt.currency, bt.amount - g, evidence | {"against": "ledger"},
                        True, fix, f":ledger:{g}")
            )  # fmt: skip
        if f != bt.fee:
            fix = adjustment(
                f"heal:fee_mismatch:{bt.id}:{f}",
                bt.id,
                bt.currency,
                fee_delta=bt.fee - f,
                gross_account="stripe_fees",
                refs={"kind": "fee_mismatch"},
                description=f"fee_mismatch: {bt.id} booked fee {f}, Stripe charged {bt.fee}",
            )
            out.append(
                Finding("fee_mismatch", bt.id, bt.currency, bt.fee - f,
                        evidence | {"against": "ledger"}, True, fix, f":ledger:{f}")
            )  # fmt: skip
        want = bt.net if bt.status == "available" else 0
        if st != want and not (bt.status == "available" and st == 0):
            delta = want - st
            fix = unsettlement(
                f"heal:timing:{bt.id}:{st}", bt.id, bt.currency, -delta, {"kind": "timing"}
            )
            out.append(
                Finding("timing", bt.id, bt.currency, delta,
                        evidence | {"ledger_available": st, "stripe_available": want},
                        True, fix, f":{st}")
            )  # fmt: skip
        return out

    async def _check_pricing(self, since: int | None, until: int | None) -> list[Finding]:
        where, params = self._window(since, until)
        m = self.pricing
        params |= {"pct": m.percent_bp, "intl": m.international_bp, "fx": m.fx_bp,
                   "fixed": m.fixed * 10_000, "tol": m.tolerance}  # fmt: skip
        # Half-even rounding of (amount * bp + fixed * 10000) / 10000 in integers.
        sql = (
            "SELECT * FROM (SELECT s.*, "
            "  (x.num / 10000) + CASE WHEN 2 * (x.num % 10000) > 10000 OR "
            "     (2 * (x.num % 10000) = 10000 AND (x.num / 10000) % 2 = 1) THEN 1 ELSE 0 END "
            "  AS expected "
            "FROM stripe_balance_transactions s JOIN ("
            "  SELECT id, amount * (:pct + CASE WHEN international THEN :intl ELSE 0 END "
            "     + CASE WHEN exchange_rate IS NOT NULL THEN :fx ELSE 0 END) + :fixed AS num "
            "  FROM stripe_balance_transactions WHERE type IN ('charge', 'payment') AND amount > 0"
            f") x ON x.id = s.id WHERE 1=1{where}) q "
            "WHERE ABS(q.fee - q.expected) > :tol ORDER BY q.created, q.id"
        )
        out: list[Finding] = []
        async with self.sessions() as session:
            result = await session.stream(text(sql), params)
            async for row in result:
                expected = int(row.expected)
                out.append(
                    Finding(
                        "fee_mismatch",
                        row.id,
                        row.currency,
                        int(row.fee) - expected,
                        {
                            "against": "pricing_model",
                            "balance_transaction": row.id,
                            "source": row.source or "",
                            "stripe_amount": int(row.amount),
                            "stripe_fee": int(row.fee),
                            "expected_fee": expected,
                            "international": bool(row.international),
                            "converted": row.exchange_rate is not None,
                            "model": (f"{m.percent_bp}bp+{m.fixed}, +{m.international_bp}bp intl, "
                                      f"+{m.fx_bp}bp fx"),
                        },
                        key_suffix=":pricing_model",
                    )
                )  # fmt: skip
        return out

    async def _check_rates(self, since: int | None, until: int | None) -> list[Finding]:
        where, params = self._window(since, until)
        sql = (
            "SELECT * FROM stripe_balance_transactions s WHERE s.fx_expected_amount IS NOT NULL "
            f"AND s.fx_expected_amount != s.amount{where} ORDER BY s.created, s.id"
        )
        async with self.sessions() as session:
            rows = (await session.execute(text(sql), params)).all()
        return [
            Finding(
                "fx_mismatch",
                r.id,
                r.currency,
                int(r.amount) - int(r.fx_expected_amount),
                {
                    "against": "stripe_rate",
                    "balance_transaction": r.id,
                    "source": r.source or "",
                    "presentment": f"{r.source_amount} {r.source_currency}",
                    "exchange_rate": r.exchange_rate or "",
                    "stripe_amount": int(r.amount),
                    "expected_amount": int(r.fx_expected_amount),
                },
                key_suffix=":rate",
            )
            for r in rows
        ]

    async def _missing_in_stripe(self) -> list[Finding]:
        """Bookings of transactions Stripe does not have, among entries booked before the
        last import started (anything later may simply not be imported yet)."""
        cutoff = self.last_import_started
        if cutoff is None:  # no import by this process: the last one recorded
            async with self.sessions() as session:
                cutoff = (
                    await session.execute(select(func.max(stripe_bts.c.imported_at)))
                ).scalar_one()
            if cutoff is None:
                return []
        stmt = (
            select(
                entries.c.id, entries.c.bt_id, entries.c.source_event_id, entries.c.source_type,
                entries.c.source_id, entries.c.bt_gross, entries.c.seq,
                select(func.min(postings.c.currency))
                .where(postings.c.entry_seq == entries.c.seq)
                .scalar_subquery()
                .label("currency"),
            )
            .where(
                entries.c.link_role == "booking",
                entries.c.created_at < cutoff,
                ~select(text("1"))
                .select_from(text("stripe_balance_transactions s"))
                .where(text("s.id = journal_entries.bt_id"))
                .exists(),
            )
            .order_by(entries.c.seq)
        )  # fmt: skip
        async with self.sessions() as session:
            rows = (await session.execute(stmt)).all()
            # A booking already reversed (by a human's decision) nets to nothing: not missing.
            ids = [r.bt_id for r in rows]
            net_stmt = (
                select(
                    entries.c.bt_id,
                    func.sum(func.coalesce(entries.c.bt_gross, 0)).label("g"),
                    func.sum(func.coalesce(entries.c.bt_fee, 0)).label("f"),
                    func.sum(func.coalesce(entries.c.bt_settled, 0)).label("st"),
                )
                .where(entries.c.bt_id.in_(ids))
                .group_by(entries.c.bt_id)
            )
            open_ids = {
                r.bt_id
                for r in (await session.execute(net_stmt)).all()
                if (r.g, r.f, r.st) != (0, 0, 0)
            }
        rows = [r for r in rows if r.bt_id in open_ids]
        return [
            Finding(
                "missing_in_stripe",
                r.bt_id,
                r.currency or "",
                int(r.bt_gross or 0),
                {
                    "entry": r.id,
                    "source_event_id": r.source_event_id,
                    "source_type": r.source_type,
                    "source_id": r.source_id,
                    "balance_transaction": r.bt_id,
                    "ledger_amount": int(r.bt_gross or 0),
                },
            )
            for r in rows
        ]

    async def _check_payouts(self, since: int | None, until: int | None) -> list[Finding]:
        where, params = self._window(since, until, "p")
        sql = (
            "SELECT p.*, bt.amount AS bt_amount, "
            " (SELECT COALESCE(SUM(x.amount), 0) FROM postings x JOIN journal_entries e "
            "   ON e.seq = x.entry_seq "
            "   WHERE e.source_id = p.id AND x.account = 'payouts_in_transit') "
            "   AS in_transit, "
            " (SELECT COALESCE(SUM(x.amount), 0) FROM postings x JOIN journal_entries e "
            "   ON e.seq = x.entry_seq WHERE e.source_id = p.id AND x.account = 'bank') AS bank "
            "FROM stripe_payouts p LEFT JOIN stripe_balance_transactions bt "
            f"ON bt.id = p.balance_transaction WHERE 1=1{where} ORDER BY p.created, p.id"
        )
        async with self.sessions() as session:
            rows = (await session.execute(text(sql), params)).all()
        out: list[Finding] = []
        for r in rows:
            amount = int(r.amount)
            moved = -int(r.bt_amount) if r.bt_amount is not None else None
            problems: list[str] = []
            if moved is None:
                problems.append("the payout's balance transaction is not imported")
            elif moved != amount:
                problems.append(f"payout amount {amount} but its balance transaction moved {moved}")
            if r.contents_imported and int(r.contents_net) != amount:
                problems.append(f"its {r.contents_count} transactions net {int(r.contents_net)}")
            basis = moved if moved is not None else amount
            want_transit = basis if r.status in ("pending", "in_transit") else 0
            want_bank = basis if r.status == "paid" else 0
            if int(r.in_transit) != want_transit or int(r.bank) != want_bank:
                problems.append(
                    f"ledger has {int(r.in_transit)} in transit and {int(r.bank)} in the bank "
                    f"for a {r.status} payout"
                )
            if problems:
                diff = (moved - amount) if moved is not None else amount
                if diff == 0 and r.contents_imported:
                    diff = int(r.contents_net) - amount
                out.append(
                    Finding(
                        "payout_mismatch",
                        r.id,
                        r.currency,
                        diff,
                        {
                            "payout": r.id,
                            "status": r.status,
                            "payout_amount": amount,
                            "balance_transaction_amount": "" if moved is None else moved,
                            "contents_net": int(r.contents_net),
                            "contents_count": int(r.contents_count),
                            "ledger_in_transit": int(r.in_transit),
                            "ledger_bank": int(r.bank),
                            "problems": "; ".join(problems),
                        },
                    )
                )
        return out

    # -- recording and healing -------------------------------------------------------------------
    async def _record(self, run_id: str, findings: list[Finding], summary: RunSummary) -> None:
        for f in findings:
            async with self.sessions.begin() as session:
                row = (
                    await session.execute(select(discrepancies).where(discrepancies.c.key == f.key))
                ).first()
                if row is not None and row.status in ("resolved", "dismissed"):
                    continue  # a human settled it; finding it again changes nothing
                now = _now()
                evidence = {k: str(v) for k, v in f.evidence.items()}
                if row is None:
                    disc_id = f"dsc_{secrets.token_hex(10)}"
                    await session.execute(
                        insert(discrepancies).values(
                            id=disc_id, key=f.key, kind=f.kind, status="open", subject=f.subject,
                            currency=f.currency, amount=f.amount, evidence=evidence,
                            first_run_id=run_id, last_run_id=run_id, created_at=now, updated_at=now,
                        )
                    )  # fmt: skip
                    await _audit(
                        session, disc_id, "reconciler", "found", {"run": run_id, **evidence}
                    )
                else:
                    disc_id = row.id
                    await session.execute(
                        update(discrepancies)
                        .where(discrepancies.c.id == disc_id)
                        .values(
                            last_run_id=run_id, updated_at=now, status="open", evidence=evidence
                        )
                    )
                summary.found += 1
                summary.count(f.kind, "found")
                summary.amounts[f.currency] = summary.amounts.get(f.currency, 0) + abs(f.amount)
                healed = False
                if f.fix is not None and self.policy.should_heal(f.kind, f.certain, f.amount):
                    entry = _tag(f.fix, disc_id, run_id)
                    entry_id = (await Journal(session).append_many([entry]))[0]
                    if entry_id is not None:
                        await session.execute(
                            update(discrepancies)
                            .where(discrepancies.c.id == disc_id)
                            .values(status="healed", adjusting_entry_id=entry_id)
                        )
                        await _audit(session, disc_id, "reconciler", "healed",
                                     {"run": run_id, "entry": entry_id})  # fmt: skip
                        healed = True
                    else:  # booked meanwhile (its event arrived): nothing left to correct
                        await session.execute(
                            update(discrepancies)
                            .where(discrepancies.c.id == disc_id)
                            .values(status="resolved", resolved_by="reconciler",
                                    resolution_reason="booked meanwhile by its own event")
                        )  # fmt: skip
                        await _audit(session, disc_id, "reconciler", "resolved", {"run": run_id})
                        healed = True
                if healed:
                    summary.count(f.kind, "healed")
                else:
                    summary.count(f.kind, "queued")
                    if row is None:
                        await _audit(session, disc_id, "reconciler", "queued", {"run": run_id})

    async def resolve(
        self, disc_id: str, resolution: str, reason: str, actor: str
    ) -> dict[str, Any]:
        if resolution not in ("accept", "dismiss", "heal"):
            raise InvalidArgument("resolution: one of accept, dismiss, heal")
        if not reason.strip():
            raise InvalidArgument("reason: required (it is kept in the audit trail)")
        async with self.sessions.begin() as session:
            row = (
                await session.execute(select(discrepancies).where(discrepancies.c.id == disc_id))
            ).first()
            if row is None:
                raise NotFound(f"discrepancy {disc_id} not found")
            if row.status != "open":
                raise FailedPrecondition(f"discrepancy {disc_id} is {row.status}, not open")
            values: dict[str, Any] = {
                "status": {"accept": "resolved", "dismiss": "dismissed", "heal": "healed"}[
                    resolution
                ],
                "resolved_by": actor,
                "resolution_reason": reason,
                "updated_at": _now(),
            }
            detail: dict[str, Any] = {"resolution": resolution, "reason": reason}
            if resolution == "heal":
                fix = await self._fix_for(session, row)
                if fix is None:
                    raise FailedPrecondition(
                        f"a {row.kind} has no correction the ledger can derive: accept or dismiss"
                    )
                entry_id = (await Journal(session).append_many([_tag(fix, disc_id, "human")]))[0]
                if entry_id is None:
                    raise FailedPrecondition("the correction is already booked")
                values["adjusting_entry_id"] = entry_id
                detail["entry"] = entry_id
            await session.execute(
                update(discrepancies).where(discrepancies.c.id == disc_id).values(values)
            )
            await _audit(session, disc_id, actor, "resolved", detail)
            out = (
                await session.execute(select(discrepancies).where(discrepancies.c.id == disc_id))
            ).one()
        return dict(out._mapping)

    async def _fix_for(self, session: AsyncSession, row: Any) -> JournalEntry | None:
        """A human may approve a correction the policy would not make on its own (an amount
        mismatch, a large one): derived again from Stripe's transaction, never from the
        request."""
        if row.kind == "missing_in_stripe":  # reverse the booking Stripe has no record of
            found = await Journal(session).get(str((row.evidence or {}).get("entry", "")))
            if found is None:
                return None
            return found.entry.reversed(
                f"heal:missing_in_stripe:{found.id}",
                f"reversal of {found.id}: Stripe has no {row.subject}",
            )
        bt = await StripeMirror(session).get_bt(row.subject)
        if bt is None:
            return None
        stmt = select(
            func.coalesce(func.sum(entries.c.bt_gross), 0),
            func.coalesce(func.sum(entries.c.bt_fee), 0),
            func.count(),
        ).where(entries.c.bt_id == bt.id)
        g, f, n = (await session.execute(stmt)).one()
        if row.kind in ("missing_in_ledger", "unbooked_dispute") and int(n) == 0:
            return from_balance_transaction(bt, f"heal:{row.kind}:{bt.id}", "reconciliation.healed")
        if row.kind in ("amount_mismatch", "fx_mismatch") and int(g) != bt.amount:
            account = "fx_gain_loss" if row.kind == "fx_mismatch" else (
                "refunds" if bt.amount < 0 else "revenue")  # fmt: skip
            return adjustment(
                f"heal:{row.kind}:{bt.id}:{int(g)}", bt.id, bt.currency,
                gross_delta=bt.amount - int(g), gross_account=account, refs={"kind": row.kind},
                description=f"{row.kind}: {bt.id} to Stripe's {bt.amount} (approved)",
            )  # fmt: skip
        if row.kind == "fee_mismatch" and int(f) != bt.fee:
            return adjustment(
                f"heal:fee_mismatch:{bt.id}:{int(f)}", bt.id, bt.currency,
                fee_delta=bt.fee - int(f), gross_account="stripe_fees",
                refs={"kind": "fee_mismatch"}, description=f"fee of {bt.id} to Stripe's (approved)",
            )  # fmt: skip
        return None

    # -- tie-out -------------------------------------------------------------------------------
    async def tie_out(
        self, stripe_balance: dict[str, dict[str, int]] | None
    ) -> tuple[list[dict[str, Any]], int]:
        async with self.sessions() as session:
            journal = Journal(session)
            closing_seq, _ = await journal.head()
            prev = (
                await session.execute(
                    select(recon_runs.c.summary)
                    .where(recon_runs.c.status == "completed")
                    .order_by(recon_runs.c.finished_at.desc())
                    .limit(1)
                )
            ).first()
            opening_seq = int((prev.summary or {}).get("closing_seq", 0)) if prev else 0
            bal = await journal.stored_balances()
            if stripe_balance is None:  # no live balance: Stripe's, as imported
                stripe_balance = defaultdict(lambda: {"pending": 0, "available": 0})
                rows = (
                    await session.execute(
                        text("SELECT currency, status, SUM(net) FROM stripe_balance_transactions "
                             "GROUP BY currency, status")
                    )
                ).all()  # fmt: skip
                for cur, status, total in rows:
                    stripe_balance[cur]["available" if status == "available" else "pending"] += int(
                        total
                    )
            currencies = sorted({c for (a, c) in bal if a in STRIPE_BALANCE} | set(stripe_balance))
            out = []
            for cur in currencies:
                opening = 0
                for account in STRIPE_BALANCE:
                    opening += (await journal.balance_as_of(account, cur, seq=opening_seq))[0]
                pending, available = (
                    bal.get(("stripe_pending", cur), 0),
                    bal.get(("stripe_available", cur), 0),
                )
                closing = pending + available
                sb = stripe_balance.get(cur, {"pending": 0, "available": 0})
                out.append(
                    {
                        "currency": cur,
                        "opening": opening,
                        "activity": closing - opening,
                        "closing": closing,
                        "stripe_balance": sb["pending"] + sb["available"],
                        "stripe_pending": sb["pending"],
                        "stripe_available": sb["available"],
                        "ledger_pending": pending,
                        "ledger_available": available,
                        "ties_out": pending == sb["pending"] and available == sb["available"],
                    }
                )
        return out, closing_seq


def _balance_by_currency(balance: dict[str, Any]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(lambda: {"pending": 0, "available": 0})
    for bucket in ("pending", "available"):
        for item in balance.get(bucket) or []:
            out[str(item["currency"])][bucket] += int(item["amount"])
    return dict(out)


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


async def _audit(
    session: AsyncSession, disc_id: str, actor: str, action: str, detail: dict[str, Any]
) -> None:
    await session.execute(
        insert(discrepancy_audit).values(
            discrepancy_id=disc_id, at=_now(), actor=actor, action=action, detail=detail
        )
    )
