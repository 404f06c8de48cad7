from __future__ import annotations

import hashlib
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from ._engine import create_engine, validate_schema
from ._errors import MigrationError

__all__ = ["alembic_env", "run_migrations"]


async def run_migrations(url: str, script_location: str, schema: str | None = None) -> None:
    """Bring the database at `url` to alembic's head; a no-op when it is already there.

    On PostgreSQL the schema is created when missing and the upgrade holds a transaction-level
    advisory lock, so replicas starting together migrate one after the other. On SQLite the
    upgrade's BEGIN IMMEDIATE transaction serialises them the same way.
    """
    if schema is not None:
        validate_schema(schema)
    engine = create_engine(url, schema=schema)
    try:
        async with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(schema)}
                )
                if schema is not None:
                    await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            await conn.run_sync(_upgrade, script_location)
    except (CommandError, SQLAlchemyError) as exc:
        raise MigrationError(f"migrating {script_location!r} to head failed: {exc}") from exc
    finally:
        await engine.dispose()


def _lock_key(schema: str | None) -> int:
    digest = hashlib.sha256(f"payplane.db.migrations:{schema or ''}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _upgrade(connection: Connection, script_location: str) -> None:
    config = Config()
    config.set_main_option("script_location", script_location)
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def alembic_env(target_metadata: MetaData | None = None) -> None:
    """The whole body of a payplane migrations folder's `env.py`.

    Online, it runs on the connection `run_migrations` hands over (already inside its
    transaction). Offline (`alembic upgrade --sql`), it renders SQL for the configured URL.
    """
    from alembic import context  # only importable while alembic runs env.py

    config = context.config
    if context.is_offline_mode():
        context.configure(
            url=config.get_main_option("sqlalchemy.url"),
            target_metadata=target_metadata,
            literal_binds=True,
            dialect_opts={"paramstyle": "named"},
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    connection: Any = config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise MigrationError("run migrations through payplane.db.run_migrations(url, ...)")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
