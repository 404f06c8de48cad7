"""Test helpers: real databases, isolated per test.

    postgres_url()                 TEST_POSTGRES_URL, or None when it is unset
    postgres_schema(url)           async context manager: a fresh schema, dropped afterwards
    db_url_fixture()               a pytest fixture over ["sqlite", "postgresql"] giving a
                                   TestDatabase; the postgresql case skips with a reason when
                                   TEST_POSTGRES_URL is unset

In a test module or conftest.py:

    db_url = db_url_fixture()

    async def test_x(db_url: TestDatabase) -> None:
        engine = create_engine(db_url.url, schema=db_url.schema)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
from sqlalchemy import text

from ._engine import create_engine

__all__ = [
    "POSTGRES_ENV",
    "TestDatabase",
    "db_url_fixture",
    "postgres_schema",
    "postgres_url",
]

POSTGRES_ENV = "TEST_POSTGRES_URL"
_SKIP_REASON = (
    f"{POSTGRES_ENV} is not set; set it (e.g. postgresql://postgres@127.0.0.1:5432/test) "
    "to run the PostgreSQL variant"
)


def postgres_url() -> str | None:
    """The PostgreSQL server tests may use, from TEST_POSTGRES_URL; None when unset."""
    return os.environ.get(POSTGRES_ENV) or None


@asynccontextmanager
async def postgres_schema(url: str) -> AsyncIterator[str]:
    """Create a uniquely named schema on `url`, yield its name, drop it (cascade) afterwards."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{name}"'))
        try:
            yield name
        finally:
            async with engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class TestDatabase:
    """Where a test's database lives: pass `url` and `schema` to create_engine."""

    __test__ = False  # not a test class, despite the name

    kind: Literal["sqlite", "postgresql"]
    url: str
    schema: str | None


def db_url_fixture() -> Callable[..., Any]:
    """A function-scoped fixture parametrised over SQLite (a temp file) and PostgreSQL."""

    @pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
    async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TestDatabase]:
        if request.param == "sqlite":
            yield TestDatabase("sqlite", f"sqlite:///{tmp_path / 'test.db'}", None)
            return
        url = postgres_url()
        if url is None:
            pytest.skip(_SKIP_REASON)
        async with postgres_schema(url) as schema:
            yield TestDatabase("postgresql", url, schema)

    return db_url
