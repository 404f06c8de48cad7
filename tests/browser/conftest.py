"""Browser tests: Debian's chromium, driven by Playwright, against the local stack run as
processes (`python -m stack`, with the console) on free ports.

They skip, saying why, where /usr/bin/chromium is missing (`make browser` installs it where
apt-get is available; `make test` runs that step first) or the playwright package is not
installed. Playwright never downloads a browser here: it drives the system's chromium.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from stack.launch import launched_stack

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

try:
    from playwright.async_api import BrowserContext, async_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    SKIP_REASON: str | None = "the playwright package is not installed (the dev extra has it)"
else:
    SKIP_REASON = (
        None
        if CHROMIUM.exists()
        else f"Debian's chromium is not installed at {CHROMIUM}; `make browser` installs it "
        "where apt-get is available (these tests need a real browser)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if SKIP_REASON is None:
        return
    here = Path(__file__).parent
    for item in items:
        if item.path.parent == here:
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The local stack as processes, console included; its stack.json."""
    with launched_stack(tmp_path_factory.mktemp("stack"), timeout_s=180) as state:
        assert state["console"], "the stack runs no console"
        yield state


@pytest.fixture
async def browser() -> AsyncIterator[BrowserContext]:
    """A fresh headless chromium with its own empty profile (no cookies from other tests)."""
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        async with async_playwright() as pw:
            context = await pw.chromium.launch_persistent_context(
                profile,
                executable_path=str(CHROMIUM),
                headless=True,
                args=CHROMIUM_ARGS,
            )
            try:
                yield context
            finally:
                await context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
