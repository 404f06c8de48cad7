"""Backoff: exponential ceiling, capped, with FULL jitter. Idempotency keys."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from payplane.stripe_gateway import deterministic_key
from payplane.stripe_gateway._backoff import full_jitter
from payplane.stripe_gateway._keys import new_key
from payplane.stripe_gateway.testing import FakeRng, stripe_error

from ._rig import Obj, Rig, script


def test_ceiling_doubles_from_base_and_stops_at_cap() -> None:
    rng = FakeRng(1.0)
    waits = [full_jitter(n, 0.25, 3.0, rng) for n in range(8)]
    assert waits == [0.25, 0.5, 1.0, 2.0, 3.0, 3.0, 3.0, 3.0]
    assert all(low == 0.0 for low, _ in rng.calls), "full jitter starts at zero"


def test_huge_retry_numbers_do_not_overflow() -> None:
    assert full_jitter(10_000, 0.25, 3.0, FakeRng(1.0)) == 3.0


def test_jitter_spreads_over_the_whole_range() -> None:
    # The SDK jitters to 50-100 %; full jitter must also produce waits near zero.
    rng = random.Random(1234)
    ceiling = min(3.0, 0.25 * 2**4)
    waits = [full_jitter(4, 0.25, 3.0, rng) for _ in range(2000)]
    assert all(0.0 <= w <= ceiling for w in waits)
    assert min(waits) < 0.05 * ceiling and max(waits) > 0.95 * ceiling
    below_half = sum(w < ceiling / 2 for w in waits) / len(waits)
    assert 0.4 < below_half < 0.6


async def test_gateway_sleeps_follow_the_schedule(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(
        fraction=1.0, backoff_base_s=0.5, backoff_cap_s=4.0, max_attempts=6,
        breaker_failure_threshold=100,
    )  # fmt: skip
    fn = script(*[stripe_error(500) for _ in range(5)], Obj("cus_1"))
    result = await rig.gateway.call("customers.create", fn, idempotency_key="k-1")
    assert result.id == "cus_1" and fn.attempts == 6
    assert rig.clock.sleeps == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert rig.rng.calls == [(0.0, 0.5), (0.0, 1.0), (0.0, 2.0), (0.0, 4.0), (0.0, 4.0)]


async def test_gateway_sleep_uses_the_injected_rng(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(fraction=0.25, backoff_base_s=1.0, backoff_cap_s=8.0)
    fn = script(stripe_error(503), stripe_error(503), Obj("cus_1"))
    await rig.gateway.call("customers.create", fn, idempotency_key="k-1")
    assert rig.clock.sleeps == [0.25, 0.5]


def test_deterministic_key_is_stable_prefixed_and_short() -> None:
    key = deterministic_key("checkout", "pay_123", "create")
    assert key == deterministic_key("checkout", "pay_123", "create")
    assert key.startswith("pp1-") and len(key) <= 255
    int(key.removeprefix("pp1-"), 16)  # sha256 hex
    assert len(key.removeprefix("pp1-")) == 64


def test_deterministic_key_separates_parts() -> None:
    assert deterministic_key("ab", "c") != deterministic_key("a", "bc")
    assert deterministic_key("a") != deterministic_key("a", "")


def test_deterministic_key_refuses_nothing_and_non_strings() -> None:
    with pytest.raises(ValueError):
        deterministic_key()
    with pytest.raises(TypeError):
        deterministic_key("a", 1)


def test_generated_keys_are_unique() -> None:
    assert len({new_key() for _ in range(100)}) == 100
