from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
import stripe

from stripe_emulator.config import Config
from stripe_emulator.testing import EmulatorHandle, running_emulator


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorHandle]:
    """One emulator for the session, rate limits off; tests that need them turn them on."""
    with running_emulator(Config(global_rate=None, endpoint_rate=None, seed=7)) as emu:
        yield emu


@pytest.fixture
def emu(emulator: EmulatorHandle) -> Iterator[EmulatorHandle]:
    """The session emulator, reset to a clean state and default settings for each test."""
    emulator.control.reset()
    defaults = Config()
    emulator.control.configure(  # what a test may have changed, back to Stripe's defaults
        global_rate=None,
        endpoint_rate=None,
        max_concurrent=None,
        pricing=dataclasses.asdict(defaults.pricing),
        fx_rates=defaults.fx_rates,
        billing=dataclasses.asdict(defaults.billing),
    )
    yield emulator
    emulator.control.clear_faults()


@pytest.fixture
def client(emu: EmulatorHandle) -> stripe.StripeClient:
    return emu.stripe_client()
