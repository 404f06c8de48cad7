from __future__ import annotations

__all__ = ["DatabaseError", "MigrationError", "UnsupportedDatabaseURL"]


class DatabaseError(Exception):
    """Base of payplane.db errors."""


class UnsupportedDatabaseURL(DatabaseError, ValueError):
    """The URL is neither SQLite nor PostgreSQL, or the schema name is not a plain identifier."""


class MigrationError(DatabaseError):
    """Alembic failed to upgrade the database to head; the cause is chained."""
