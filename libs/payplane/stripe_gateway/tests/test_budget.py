"""The token bucket: lanes under scarcity, AIMD down on 429 rate_limit and back up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from payplane.stripe_gateway import Lane
from payplane.stripe_gateway._budget import RateBudget
from payplane.stripe_gateway.testing import FakeClock, settle, stripe_error

from ._rig import Obj, Rig, script


def budget(clock: FakeClock, rate: float = 2.0, hold: float = 0.0) -> RateBudget:
    return RateBudget(
        rate=rate, floor=1.0, decrease_factor=0.5, increase_per_success=0.5,
        decrease_hold_s=hold, now=clock.now, sleep=clock.sleep,
    )  # fmt: skip


async def drained(clock: FakeClock, rate: float = 2.0) -> RateBudget:
    b = budget(clock, rate)
    for _ in range(int(rate)):
        await b.acquire(Lane.INTERACTIVE)  # the burst: immediate
    assert b.tokens < 1.0
    return b


async def test_lanes_are_served_in_priority_then_arrival_order() -> None:
    clock = FakeClock(auto=False)
    b = await drained(clock)
    served: list[str] = []

    async def take(lane: Lane, name: str) -> None:
        await b.acquire(lane)
        served.append(name)

    arrivals = [
        (Lane.BACKGROUND, "bg1"), (Lane.REFUNDS, "rf1"), (Lane.INTERACTIVE, "in1"),
        (Lane.BACKGROUND, "bg2"), (Lane.INTERACTIVE, "in2"), (Lane.REFUNDS, "rf2"),
    ]  # fmt: skip
    tasks = []
    for lane, name in arrivals:
        tasks.append(asyncio.create_task(take(lane, name)))
        await settle()
    assert served == [] and b.waiting() == {Lane.INTERACTIVE: 2, Lane.REFUNDS: 2,
                                            Lane.PAYOUTS: 0, Lane.BACKGROUND: 2}  # fmt: skip
    for _ in arrivals:
        await clock.advance(0.5)  # rate 2/s: one token per half second
    assert served == ["in1", "in2", "rf1", "rf2", "bg1", "bg2"]
    await asyncio.gather(*tasks)


async def test_interactive_arriving_late_overtakes_a_background_backlog() -> None:
    clock = FakeClock(auto=False)
    b = await drained(clock)
    served: list[str] = []

    async def take(lane: Lane, name: str) -> None:
        await b.acquire(lane)
        served.append(name)

    backlog = [asyncio.create_task(take(Lane.BACKGROUND, f"bg{i}")) for i in range(5)]
    await settle()
    await clock.advance(0.5)
    assert served == ["bg0"]
    late = asyncio.create_task(take(Lane.INTERACTIVE, "in"))
    await settle()
    await clock.advance(0.5)
    assert served == ["bg0", "in"], "interactive waits one token, not the whole backlog"
    for _ in range(4):
        await clock.advance(0.5)
    assert served[2:] == ["bg1", "bg2", "bg3", "bg4"]
    await asyncio.gather(*backlog, late)


async def test_a_cancelled_waiter_gives_its_turn_away() -> None:
    clock = FakeClock(auto=False)
    b = await drained(clock)
    served: list[str] = []

    async def take(lane: Lane, name: str) -> None:
        await b.acquire(lane)
        served.append(name)

    impatient = asyncio.create_task(take(Lane.INTERACTIVE, "in"))
    patient = asyncio.create_task(take(Lane.BACKGROUND, "bg"))
    await settle()
    impatient.cancel()
    await settle()
    await clock.advance(0.5)
    assert served == ["bg"]
    await patient
    with pytest.raises(asyncio.CancelledError):
        await impatient


async def test_no_wait_while_tokens_last() -> None:
    clock = FakeClock(auto=False)
    b = budget(clock, rate=5.0)
    for _ in range(5):
        await asyncio.wait_for(b.acquire(Lane.BACKGROUND), timeout=1.0)
    assert clock.sleeps == []


def test_aimd_halves_on_rate_limit_down_to_the_floor() -> None:
    clock = FakeClock()
    b = budget(clock, rate=20.0)
    rates = []
    for _ in range(6):
        b.on_rate_limited()
        rates.append(b.effective_rate)
    assert rates == [10.0, 5.0, 2.5, 1.25, 1.0, 1.0]


def test_a_burst_of_429s_counts_once_per_hold() -> None:
    clock = FakeClock()
    b = budget(clock, rate=20.0, hold=1.0)
    assert b.on_rate_limited() is True
    assert b.on_rate_limited() is False and b.effective_rate == 10.0
    clock.jump(1.0)
    assert b.on_rate_limited() is True and b.effective_rate == 5.0


def test_a_429_empties_the_bucket() -> None:
    clock = FakeClock()
    b = budget(clock, rate=20.0)
    assert b.tokens == 20.0
    b.on_rate_limited()
    assert b.tokens == 0.0
    clock.jump(0.5)
    assert b.tokens == pytest.approx(5.0), "refills at the lowered rate"


def test_successes_recover_additively_up_to_the_configured_rate() -> None:
    clock = FakeClock()
    b = budget(clock, rate=4.0)
    b.on_rate_limited()
    assert b.effective_rate == 2.0
    b.on_success()
    assert b.effective_rate == 2.5
    for _ in range(10):
        b.on_success()
    assert b.effective_rate == 4.0


async def test_gateway_lowers_its_rate_on_429_rate_limit_only(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig(max_requests_per_s=20.0, rate_increase_per_success=1.0)
    limited = stripe_error(
        429, code="rate_limit", headers={"Stripe-Rate-Limited-Reason": "global-rate"}
    )
    await rig.gateway.call("customers.create", script(limited, Obj("c")), idempotency_key="a")
    assert rig.gateway.effective_rate == 11.0  # 20 * 0.5, then +1 for the success
    locked = stripe_error(429, code="lock_timeout", headers={"Stripe-Should-Retry": "true"})
    await rig.gateway.call("customers.update", script(locked, Obj("c")), idempotency_key="b")
    assert rig.gateway.effective_rate == 12.0, "a lock timeout is not a rate signal"


async def test_close_cancels_waiters() -> None:
    clock = FakeClock(auto=False)
    b = await drained(clock)
    waiter = asyncio.create_task(b.acquire(Lane.BACKGROUND))
    await settle()
    b.close()
    with pytest.raises(asyncio.CancelledError):
        await waiter
