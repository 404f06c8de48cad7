from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import MetaData, Table, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from payplane.events import inbox_table, outbox_table
from payplane.natsd.testing import nats_client, nats_server, nats_url  # noqa: F401


@dataclass
class Db:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    outbox: Table
    inbox: Table

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name


def _postgres_url() -> str | None:
    url = os.environ.get("TEST_POSTGRES_URL")
    if not url:
        return None
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


async def _schema_tables(engine: AsyncEngine) -> tuple[Table, Table]:
    metadata = MetaData()
    outbox, inbox = outbox_table(metadata), inbox_table(metadata)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    return outbox, inbox


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Db]:
    """Real SQLite, and real PostgreSQL (own schema per test) when TEST_POSTGRES_URL is set."""
    if request.param == "sqlite":
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'events.db'}")
        outbox, inbox = await _schema_tables(engine)
        try:
            yield Db(engine, async_sessionmaker(engine, expire_on_commit=False), outbox, inbox)
        finally:
            await engine.dispose()
        return
    url = _postgres_url()
    if url is None:
        pytest.skip("TEST_POSTGRES_URL is not set")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(url)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_async_engine(url, connect_args={"server_settings": {"search_path": schema}})
    try:
        outbox, inbox = await _schema_tables(engine)
        yield Db(engine, async_sessionmaker(engine, expire_on_commit=False), outbox, inbox)
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@pytest.fixture
def js(nats_client: Client) -> JetStreamContext:  # noqa: F811
    return nats_client.jetstream()


@pytest.fixture
def uid() -> str:
    """A short unique token for stream, consumer and subject names (one shared server)."""
    return uuid.uuid4().hex[:10].upper()


@dataclass
class Tracing:
    provider: TracerProvider
    exporter: InMemorySpanExporter


@pytest.fixture
def tracing() -> Iterator[Tracing]:
    """A private tracer provider (the global one is left alone)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield Tracing(provider, exporter)
    provider.shutdown()
