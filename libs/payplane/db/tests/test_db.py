from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from payplane.db import (
    MigrationError,
    UnsupportedDatabaseURL,
    async_url,
    create_engine,
    run_migrations,
    session_factory,
)
from payplane.db.testing import TestDatabase, db_url_fixture, postgres_schema, postgres_url

db_url = db_url_fixture()
MIGRATIONS = str(Path(__file__).parent / "migrations")


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("sqlite:///x.db", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite"),
        ("postgresql://u@h/db", "postgresql+asyncpg"),
        ("postgres://u@h/db", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg"),
    ],
)
def test_plain_urls_get_the_async_driver(url: str, driver: str) -> None:
    assert async_url(url).drivername == driver


@pytest.mark.parametrize("url", ["mysql://u@h/db", "postgresql+psycopg2://u@h/db", "nonsense"])
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(UnsupportedDatabaseURL):
        create_engine(url)


def test_a_schema_must_be_a_plain_identifier() -> None:
    with pytest.raises(UnsupportedDatabaseURL):
        create_engine("postgresql://u@h/db", schema='x"; drop schema public; --')


async def test_sqlite_is_set_up_for_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        async with engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
            assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
            assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar_one() > 0
    finally:
        await engine.dispose()


async def test_concurrent_read_then_write_transactions_queue_on_sqlite(tmp_path: Path) -> None:
    # Deferred transactions would fail here with "database is locked" (a stale WAL snapshot
    # cannot be upgraded to a writer); BEGIN IMMEDIATE makes them wait their turn.
    engine = create_engine(f"sqlite:///{tmp_path / 'c.db'}")
    sessions = session_factory(engine)
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE counter (n INTEGER NOT NULL)")
            await conn.exec_driver_sql("INSERT INTO counter VALUES (0)")

        async def increment() -> None:
            async with sessions() as session, session.begin():
                n = (await session.execute(text("SELECT n FROM counter"))).scalar_one()
                await asyncio.sleep(0)
                await session.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})

        await asyncio.gather(*(increment() for _ in range(20)))
        async with sessions() as session:
            assert (await session.execute(text("SELECT n FROM counter"))).scalar_one() == 20
    finally:
        await engine.dispose()


async def test_sessions_keep_objects_readable_after_commit(db_url: TestDatabase) -> None:
    engine = create_engine(db_url.url, schema=db_url.schema)
    try:
        assert session_factory(engine).kw["expire_on_commit"] is False
    finally:
        await engine.dispose()


async def test_migrations_reach_head_and_are_idempotent(db_url: TestDatabase) -> None:
    await run_migrations(db_url.url, MIGRATIONS, schema=db_url.schema)
    await run_migrations(db_url.url, MIGRATIONS, schema=db_url.schema)
    engine = create_engine(db_url.url, schema=db_url.schema)
    try:
        async with engine.begin() as conn:
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
            assert [row[0] for row in version] == ["0002"]
            await conn.execute(text("INSERT INTO widgets (id, name) VALUES (1, 'w')"))
            await conn.execute(text("INSERT INTO parts (id, widget_id) VALUES (1, 1)"))
        # Foreign keys are enforced on both backends.
        with pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO parts (id, widget_id) VALUES (2, 99)"))
    finally:
        await engine.dispose()


async def test_concurrent_migrations_do_not_collide(db_url: TestDatabase) -> None:
    await asyncio.gather(
        *(run_migrations(db_url.url, MIGRATIONS, schema=db_url.schema) for _ in range(3))
    )
    engine = create_engine(db_url.url, schema=db_url.schema)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
            assert [row[0] for row in rows] == ["0002"]
    finally:
        await engine.dispose()


async def test_a_broken_migration_folder_raises_migration_error(tmp_path: Path) -> None:
    with pytest.raises(MigrationError):
        await run_migrations(f"sqlite:///{tmp_path / 'm.db'}", str(tmp_path / "nowhere"))


@pytest.mark.postgres
async def test_postgres_tables_live_in_the_given_schema() -> None:
    url = postgres_url()
    if url is None:
        pytest.skip("TEST_POSTGRES_URL is not set")
    async with postgres_schema(url) as schema:
        await run_migrations(url, MIGRATIONS, schema=schema)
        engine = create_engine(url, schema=schema)
        try:
            async with engine.connect() as conn:
                assert (await conn.execute(text("SHOW search_path"))).scalar() == schema
                tables = (
                    await conn.execute(
                        text(
                            "SELECT table_name FROM information_schema.tables "
                            "WHERE table_schema = :s ORDER BY table_name"
                        ),
                        {"s": schema},
                    )
                ).all()
                assert [t[0] for t in tables] == ["alembic_version", "parts", "widgets"]
        finally:
            await engine.dispose()
    # The schema is gone afterwards.
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            found = await conn.execute(
                text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :s"),
                {"s": schema},
            )
            assert found.first() is None
    finally:
        await engine.dispose()
