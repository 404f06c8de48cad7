from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
)

__all__ = ["inbox_table", "outbox_table"]

# BIGINT on PostgreSQL, but SQLite only autoincrements an INTEGER PRIMARY KEY.
_Id = BigInteger().with_variant(Integer(), "sqlite")


def _now() -> datetime:
    return datetime.now(UTC)


def outbox_table(metadata: MetaData, name: str = "outbox") -> Table:
    """Events waiting for the relay; one row per event, written with the state change."""
    return Table(
        name,
        metadata,
        Column("id", _Id, primary_key=True, autoincrement=True),
        Column("event_id", String(128), nullable=False, unique=True),
        Column("subject", String(255), nullable=False),
        Column("envelope", LargeBinary, nullable=False),
        # NATS headers to send with it: the W3C trace context captured at add time.
        Column("headers", JSON, nullable=False, default=dict),
        Column("created_at", DateTime(timezone=True), nullable=False, default=_now),
        Column("sent_at", DateTime(timezone=True), nullable=True, index=True),
    )


def inbox_table(metadata: MetaData, name: str = "inbox") -> Table:
    """Event ids a consumer has applied; the primary key makes a second claim a no-op."""
    return Table(
        name,
        metadata,
        Column("consumer", String(128), primary_key=True),
        Column("event_id", String(128), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False, default=_now),
    )
