from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = ["UTCDateTime", "idempotency_table"]


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite stores them naive, as text that sorts)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UTCDateTime needs an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def idempotency_table(metadata: MetaData, name: str = "idempotency_keys") -> Table:
    """The idempotency table; add it to a service's metadata and create it in a migration."""
    return Table(
        name,
        metadata,
        Column("caller", String(128), primary_key=True),
        Column("method", String(255), primary_key=True),
        Column("key", String(255), primary_key=True),
        Column("request_hash", String(64), nullable=False),
        Column("state", String(16), nullable=False),
        Column("response", LargeBinary, nullable=True),
        Column("status_code", Integer, nullable=True),  # grpc.StatusCode value, 0 = OK
        Column("status_details", Text, nullable=True),
        Column("recovery_point", Text, nullable=True),
        Column("recovery_data", JSON, nullable=True),
        # Fencing token of the attempt holding the lease: every write of a running record is
        # conditional on it, so an attempt that lost its lease cannot overwrite the new owner.
        Column("lease_token", String(32), nullable=True),
        Column("locked_until", UTCDateTime, nullable=True),
        Column("created_at", UTCDateTime, nullable=False),
        Column("expires_at", UTCDateTime, nullable=False),
        CheckConstraint("state IN ('running', 'done')", name=f"ck_{name}_state"),
        Index(f"ix_{name}_expires_at", "expires_at"),
    )
