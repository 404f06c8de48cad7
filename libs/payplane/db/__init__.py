"""Async SQLAlchemy engines, sessions and migrations for every payplane service.

    DatabaseError            base of this package's errors
    ├── UnsupportedDatabaseURL   the URL names neither SQLite nor PostgreSQL (or a bad schema)
    └── MigrationError           alembic could not bring the schema to head

Usage, in a service's composition root (never at import time):

    await run_migrations(settings.database_url, "services/checkout/migrations", schema="checkout")
    engine = create_engine(settings.database_url, schema="checkout")
    sessions = session_factory(engine)

Plain `sqlite:///x.db` and `postgresql://...` URLs get the async driver (aiosqlite, asyncpg).
A migrations folder's `env.py` calls `alembic_env(target_metadata)` and nothing else.
`ping(engine)` is the database's health check (True when `SELECT 1` answers in time).
"""

from __future__ import annotations

from ._engine import async_url, create_engine, session_factory
from ._errors import DatabaseError, MigrationError, UnsupportedDatabaseURL
from ._migrations import alembic_env, run_migrations
from ._ping import ping

__all__ = [
    "DatabaseError",
    "MigrationError",
    "UnsupportedDatabaseURL",
    "alembic_env",
    "async_url",
    "create_engine",
    "ping",
    "run_migrations",
    "session_factory",
]
