"""Fixtures for the cross-service suites beside e2e (authz, fuzz), which re-export them from
their conftest.py: the Stripe emulator and one in-process platform per test module
(harness.py), reached over real gRPC, on SQLite and, when TEST_POSTGRES_URL is set, on
PostgreSQL. tests/e2e's own tests use conftest.py (one platform per test).

Not a conftest.py at tests/ on purpose: pytest would import it as `tests.conftest`, the name
the emulator's own tests/conftest.py (tools/stripe_emulator/tests) already takes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from payplane.db.testing import TestDatabase, postgres_schema, postgres_url
from stripe_emulator.config import Config
from stripe_emulator.testing import EmulatorHandle, running_emulator
from tests.e2e.harness import Platform, start_platform


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorHandle]:
    with running_emulator(Config(global_rate=None, endpoint_rate=None, seed=5)) as emu:
        yield emu


@pytest_asyncio.fixture(
    scope="module",
    loop_scope="session",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
async def module_platform(
    request: pytest.FixtureRequest,
    emulator: EmulatorHandle,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Platform]:
    """One platform for every test of a module (a suite's many calls share its state)."""
    emulator.control.reset()
    emulator.control.configure(webhook_retry_base_s=0.05, webhook_retry_max_s=0.5)
    tmp = tmp_path_factory.mktemp("platform")
    if request.param == "sqlite":
        p = await start_platform(emulator, tmp)
        try:
            yield p
        finally:
            emulator.control.clear_faults()
            await p.close()
        return
    url = postgres_url()
    if url is None:
        pytest.skip("TEST_POSTGRES_URL is not set: the PostgreSQL variant does not run")
    async with postgres_schema(url) as schema:
        p = await start_platform(emulator, tmp, TestDatabase("postgresql", url, schema))
        try:
            yield p
        finally:
            emulator.control.clear_faults()
            await p.close()
