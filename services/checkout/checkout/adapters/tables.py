"""checkout's tables (SQLAlchemy Core), plus the shared libs' tables it hosts."""

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

from payplane.events import inbox_table, outbox_table
from payplane.idempotency import UTCDateTime, idempotency_table

__all__ = ["idempotency", "inbox", "metadata", "outbox", "payments", "refunds"]

metadata = MetaData()

payments = Table(
    "payments",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("caller", String(64), nullable=False),
    Column("customer_ref", String(255), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_refunded", BigInteger, nullable=False, default=0),
    Column("payment_method", String(255), nullable=False),
    Column("capture_method", String(16), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("metadata", JSON, nullable=False),
    Column("status", String(32), nullable=False),
    Column("stripe_payment_intent_id", String(64), unique=True),
    Column("stripe_charge_id", String(64)),
    Column("next_action", JSON),
    Column("decline", JSON),
    Column("version", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_payments_customer_created", "customer_ref", "created_at", "id"),
    Index("ix_payments_status_created", "status", "created_at", "id"),
    Index("ix_payments_created", "created_at", "id"),
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("payment_id", String(40), ForeignKey("payments.id"), nullable=False, index=True),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("reason", String(32), nullable=False, default=""),
    Column("status", String(16), nullable=False),
    Column("stripe_refund_id", String(64), unique=True),
    Column("created_at", UTCDateTime, nullable=False),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
idempotency = idempotency_table(metadata)
