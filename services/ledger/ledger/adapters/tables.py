"""ledger's tables: append-only entries and postings, running balances, the inbox."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
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
from payplane.idempotency import UTCDateTime

__all__ = ["balances", "entries", "inbox", "metadata", "postings"]

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
