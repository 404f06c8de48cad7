"""ledger's tables.

Books: append-only, hash-chained journal entries and their postings, running balances, the
chain head (the last sequence and hash, locked by every append), one booking per Stripe
balance transaction. Stripe's view: imported balance transactions, payouts and what each
payout contains, import cursors. Reconciliation: runs and discrepancies with their audit.
Plus the inbox and the idempotency keys.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from payplane.events import inbox_table
from payplane.idempotency import UTCDateTime, idempotency_table

__all__ = [
    "balances",
    "bt_bookings",
    "chain_head",
    "discrepancies",
    "discrepancy_audit",
    "entries",
    "idempotency",
    "import_cursors",
    "inbox",
    "metadata",
    "payout_contents",
    "postings",
    "recon_runs",
    "stripe_bts",
    "stripe_payouts",
]

metadata = MetaData()

entries = Table(
    "journal_entries",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(40), nullable=False, unique=True),
    Column("source_event_id", String(128), nullable=False, unique=True),
    Column("source_type", String(64), nullable=False),
    Column("source_id", String(64), nullable=False, index=True),
    Column("description", Text, nullable=False),
    Column("refs", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("prev_hash", String(64), nullable=True),
    Column("hash", String(64), nullable=True),
    # What the entry books of a Stripe balance transaction (domain.entries.StripeLink).
    Column("bt_id", String(64), nullable=True),
    Column("link_role", String(16), nullable=True),
    Column("bt_gross", BigInteger, nullable=True),
    Column("bt_fee", BigInteger, nullable=True),
    Column("bt_settled", BigInteger, nullable=True),
    Index("ix_journal_entries_bt_id", "bt_id"),
    Index("ix_journal_entries_created_at", "created_at"),
)

# The last entry's sequence and hash: one row, updated (and so locked) by every append, which
# serialises appenders and keeps the sequence gapless and the chain linear.
chain_head = Table(
    "chain_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

# One primary booking per balance transaction, whoever books it first (an event or healing).
bt_bookings = Table(
    "bt_bookings",
    metadata,
    Column("bt_id", String(64), primary_key=True),
    Column("entry_seq", Integer, nullable=False),
)

postings = Table(
    "postings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("entry_seq", Integer, ForeignKey("journal_entries.seq"), nullable=False),
    Column("account", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Index("ix_postings_account", "account", "currency", "entry_seq"),
    Index("ix_postings_entry", "entry_seq"),
)

# Running balance per (account, currency), updated in the same transaction as each entry.
balances = Table(
    "balances",
    metadata,
    Column("account", String(64), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("balance", BigInteger, nullable=False),
    Column("entry_count", BigInteger, nullable=False),
)

inbox = inbox_table(metadata)
idempotency = idempotency_table(metadata)

# -- Stripe's view (imported, read-only copies) -------------------------------------------------
stripe_bts = Table(
    "stripe_balance_transactions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("created", BigInteger, nullable=False),
    Column("available_on", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("type", String(32), nullable=False),
    Column("reporting_category", String(48), nullable=False),
    Column("source", String(64), nullable=True),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("fee", BigInteger, nullable=False),
    Column("net", BigInteger, nullable=False),
    Column("exchange_rate", String(32), nullable=True),
    # From the expanded source: the presentment side and whether the card is international.
    Column("source_amount", BigInteger, nullable=True),
    Column("source_currency", String(3), nullable=True),
    Column("international", Boolean, nullable=True),
    Column("fx_expected_amount", BigInteger, nullable=True),  # source amount at the BT's rate
    Column("payout_id", String(64), nullable=True),  # the automatic payout that swept it
    Column("raw", JSON, nullable=True),
    Column("imported_at", UTCDateTime, nullable=False),
    Index("ix_stripe_bts_created", "created", "id"),
    Index("ix_stripe_bts_source", "source"),
    Index("ix_stripe_bts_payout", "payout_id"),
)

stripe_payouts = Table(
    "stripe_payouts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("created", BigInteger, nullable=False),
    Column("arrival_date", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("automatic", Boolean, nullable=False),
    Column("reconciliation_status", String(24), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("balance_transaction", String(64), nullable=True),
    Column("failure_balance_transaction", String(64), nullable=True),
    Column("failure_code", String(48), nullable=True),
    Column("contents_imported", Boolean, nullable=False),
    Column("contents_count", Integer, nullable=False),
    Column("contents_net", BigInteger, nullable=False),  # sum of contained nets (own BT excluded)
    Column("raw", JSON, nullable=True),
    Column("imported_at", UTCDateTime, nullable=False),
    Index("ix_stripe_payouts_created", "created", "id"),
)

payout_contents = Table(
    "stripe_payout_contents",
    metadata,
    Column("payout_id", String(64), primary_key=True),
    Column("bt_id", String(64), primary_key=True),
)

# Where each incremental import stands: newest (created, id) fully imported, plus the page
# position inside the window in flight (resumed after a crash).
import_cursors = Table(
    "import_cursors",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("created", BigInteger, nullable=False),
    Column("last_id", String(64), nullable=False),
    Column("window_gte", BigInteger, nullable=True),
    Column("page_after", String(64), nullable=True),
    Column("window_max_created", BigInteger, nullable=True),
    Column("window_max_id", String(64), nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

# -- reconciliation --------------------------------------------------------------------------
recon_runs = Table(
    "reconciliation_runs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("mode", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("since", BigInteger, nullable=True),  # Stripe `created` window (unix seconds)
    Column("until", BigInteger, nullable=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("summary", JSON, nullable=False),
    Column("error", Text, nullable=True),
)

discrepancies = Table(
    "discrepancies",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("key", String(200), nullable=False, unique=True),  # kind + subject: re-runs find it
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("subject", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("evidence", JSON, nullable=False),
    Column("first_run_id", String(40), nullable=False),
    Column("last_run_id", String(40), nullable=False),
    Column("adjusting_entry_id", String(40), nullable=True),
    Column("resolved_by", String(128), nullable=True),
    Column("resolution_reason", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_discrepancies_status", "status", "kind"),
)

discrepancy_audit = Table(
    "discrepancy_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("discrepancy_id", String(40), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(128), nullable=False),  # "reconciler" or the human caller
    Column("action", String(32), nullable=False),  # found | healed | queued | resolved | ...
    Column("detail", JSON, nullable=False),
)
