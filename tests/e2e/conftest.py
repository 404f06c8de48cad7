from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from payplane.db.testing import TestDatabase, db_url_fixture
from stripe_emulator.config import Config
from stripe_emulator.testing import EmulatorHandle, running_emulator

from .harness import Platform, start_platform

db_url = db_url_fixture()


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorHandle]:
    with running_emulator(Config(global_rate=None, endpoint_rate=None, seed=3)) as emu:
        yield emu


@pytest.fixture
async def platform(emulator: EmulatorHandle, tmp_path: Path) -> AsyncIterator[Platform]:
    emulator.control.reset()
    emulator.control.configure(webhook_retry_base_s=0.05, webhook_retry_max_s=0.5)
    p = await start_platform(emulator, tmp_path)
    try:
        yield p
    finally:
        emulator.control.clear_faults()
        await p.close()


@pytest.fixture
async def platform_on(
    emulator: EmulatorHandle, tmp_path: Path, db_url: TestDatabase
) -> AsyncIterator[Platform]:
    """The platform on SQLite and, when TEST_POSTGRES_URL is set, on PostgreSQL."""
    emulator.control.reset()
    emulator.control.configure(webhook_retry_base_s=0.05, webhook_retry_max_s=0.5)
    p = await start_platform(emulator, tmp_path, db_url)
    try:
        yield p
    finally:
        await p.close()
