from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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

__all__ = ["inbox_table", "outbox_table", "relay_state_columns"]

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
        *relay_state_columns(),
    )


def relay_state_columns(*, indexed: bool = True) -> list[Column[Any]]:
    """The relay's bookkeeping on an outbox row (see `Relay`), also added to older tables by
    `upgrade_outbox_table`."""
    return [
        # A relay's claim on the row while it publishes it: a token and a lease end. A claim
        # whose lease has passed belongs to a relay that died or hung; anyone may take it.
        Column("claim_token", String(36), nullable=True),
        Column("claimed_until", DateTime(timezone=True), nullable=True),
        # Failed publishes that JetStream's answer pinned on this row (an outage does not count).
        Column("attempts", Integer, nullable=False, default=0, server_default="0"),
        Column("last_error", String(512), nullable=True),
        # Set aside: the row will not be published until an operator requeues it.
        Column("parked_at", DateTime(timezone=True), nullable=True, index=indexed),
    ]


def inbox_table(metadata: MetaData, name: str = "inbox") -> Table:
    """Event ids a consumer has applied; the primary key makes a second claim a no-op."""
    return Table(
        name,
        metadata,
        Column("consumer", String(128), primary_key=True),
        Column("event_id", String(128), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False, default=_now),
    )
