"""The account-wide budget: one Stripe limit shared by every gateway through NATS KV."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import nats
import pytest
from hypothesis import given
from hypothesis import strategies as st
from nats.aio.client import Client

from payplane.natsd import NatsServer
from payplane.natsd.testing import nats_server  # noqa: F401
from payplane.stripe_gateway import AccountBudget, AccountBudgetConfig, Lane, allocate
from payplane.stripe_gateway._budget import RateBudget
from payplane.stripe_gateway.testing import FakeClock

LANES = len(set(Lane))


def demand(**by_lane: float) -> list[float]:
    out = [0.0] * LANES
    for name, value in by_lane.items():
        out[int(Lane[name.upper()])] = value
    return out


# -- the allocation (pure) ------------------------------------------------------------------


def test_interactive_demand_is_served_before_background_across_services() -> None:
    shares = allocate(
        100.0,
        {
            "checkout.a": demand(interactive=60),
            "checkout.b": demand(interactive=30),
            "ledger.a": demand(background=80),
        },
    )
    assert shares["checkout.a"] == pytest.approx(60)
    assert shares["checkout.b"] == pytest.approx(30)
    assert shares["ledger.a"] == pytest.approx(10), "background gets what interactive leaves"


def test_a_lane_that_cannot_be_met_is_shared_in_proportion_to_demand() -> None:
    shares = allocate(90.0, {"a": demand(interactive=100), "b": demand(interactive=50)})
    assert shares["a"] == pytest.approx(60) and shares["b"] == pytest.approx(30)


def test_payouts_come_after_collection_and_before_background() -> None:
    shares = allocate(
        50.0,
        {
            "billing": demand(collection=30),
            "payouts": demand(payouts=30),
            "ledger": demand(background=30),
        },
    )
    assert shares == pytest.approx({"billing": 30.0, "payouts": 20.0, "ledger": 0.0})


def test_capacity_nobody_wants_is_spread_evenly() -> None:
    shares = allocate(100.0, {"a": demand(interactive=10), "b": demand()})
    assert shares == pytest.approx({"a": 55.0, "b": 45.0})


def test_every_member_keeps_its_floor() -> None:
    shares = allocate(10.0, {"busy": demand(interactive=1000), "idle": demand()}, min_share=0.5)
    assert shares["idle"] == pytest.approx(0.5)
    assert shares["busy"] == pytest.approx(9.5)


@given(
    capacity=st.floats(1.0, 1000.0),
    members=st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.lists(st.floats(0.0, 500.0), min_size=LANES, max_size=LANES),
        min_size=1,
        max_size=12,
    ),
    floor=st.floats(0.0, 5.0),
)
def test_shares_add_up_to_the_capacity_and_never_go_negative(
    capacity: float, members: dict[str, list[float]], floor: float
) -> None:
    shares = allocate(capacity, members, floor)
    assert set(shares) == set(members)
    assert sum(shares.values()) == pytest.approx(capacity, rel=1e-9)
    assert all(s >= 0 for s in shares.values())
    assert shares == allocate(capacity, dict(reversed(list(members.items()))), floor)


# -- the local bucket follows its share --------------------------------------------------------


def local(clock: FakeClock, rate: float = 10.0) -> RateBudget:
    return RateBudget(
        rate=rate, floor=1.0, decrease_factor=0.5, increase_per_success=0.5,
        decrease_hold_s=0.0, now=clock.now, sleep=clock.sleep,
    )  # fmt: skip


def test_a_shrinking_share_drops_banked_tokens() -> None:
    clock = FakeClock()
    b = local(clock, 50.0)
    assert b.tokens == 50.0
    b.set_limit(5.0)
    assert b.limit == 5.0 and b.effective_rate == 5.0
    assert b.tokens == 5.0, "no burst at the old share's size"


def test_a_growing_share_is_followed_at_once_unless_backed_off() -> None:
    clock = FakeClock()
    b = local(clock, 10.0)
    b.set_limit(40.0)
    assert b.effective_rate == 40.0
    b.on_rate_limited()
    assert b.effective_rate == 20.0
    b.set_limit(80.0)
    assert b.effective_rate == 20.0, "a 429 lowered it: it recovers additively, not at once"


async def test_demand_counts_arrivals_and_the_queue() -> None:
    clock = FakeClock(auto=False)
    b = local(clock, 2.0)
    for _ in range(2):
        await b.acquire(Lane.INTERACTIVE)
    waiting = [asyncio.create_task(b.acquire(Lane.BACKGROUND)) for _ in range(3)]
    await asyncio.sleep(0)
    d = b.demand(horizon_s=2.0, drain_s=0.5)
    assert d[Lane.INTERACTIVE] == pytest.approx(1.0)  # 2 arrivals over a 2 s horizon
    assert d[Lane.BACKGROUND] == pytest.approx(1.5 + 6)  # 3 arrivals; 3 queued, drained in 0.5 s
    assert d[Lane.PAYOUTS] == 0.0
    for task in waiting:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(*waiting)


# -- members coordinating through a real NATS ----------------------------------------------------

FAST = {"heartbeat_s": 0.2, "ttl_s": 1.5, "min_share": 0.5}


def config(bucket: str, limit: float = 100.0, **kw: float) -> AccountBudgetConfig:
    return AccountBudgetConfig(account_limit=limit, bucket=bucket, **{**FAST, **kw})


async def wait_for(check: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class Member:
    """A gateway's budget with a steady stream of callers on one lane."""

    def __init__(self, nc: Client, cfg: AccountBudgetConfig, service: str, lane: Lane) -> None:
        self.budget = RateBudget(
            rate=cfg.account_limit, floor=0.5, decrease_factor=0.5, increase_per_success=0.5,
            decrease_hold_s=1.0, now=time.monotonic, sleep=asyncio.sleep,
        )  # fmt: skip
        self.account = AccountBudget(nc.jetstream(), self.budget, cfg, service=service)
        self.lane = lane
        self.served = 0
        self._callers: list[asyncio.Task[None]] = []

    async def start(self, callers: int = 4) -> None:
        await self.account.start()
        self._callers = [asyncio.create_task(self._call()) for _ in range(callers)]

    async def _call(self) -> None:
        while True:
            await self.budget.acquire(self.lane)
            self.served += 1

    async def stop(self, *, clean: bool = True) -> None:
        for task in self._callers:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._callers)
        if clean:
            await self.account.stop()
        else:  # a crash: the heartbeat stops, the key stays behind
            assert self.account._task is not None
            self.account._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.account._task
        self.budget.close()


@pytest.fixture
async def connect(nats_server: NatsServer) -> AsyncIterator[Callable[[], Awaitable[Client]]]:  # noqa: F811
    clients: list[Client] = []

    async def make() -> Client:
        nc = await nats.connect(nats_server.url, connect_timeout=5)
        clients.append(nc)
        return nc

    yield make
    for nc in clients:
        with contextlib.suppress(Exception):
            await nc.close()


async def test_replicas_of_several_services_split_one_limit(
    connect: Callable[[], Awaitable[Client]],
) -> None:
    cfg = config(f"budget_{uuid.uuid4().hex[:8]}")
    members = [
        Member(await connect(), cfg, "checkout", Lane.INTERACTIVE),
        Member(await connect(), cfg, "checkout", Lane.INTERACTIVE),
        Member(await connect(), cfg, "ledger", Lane.BACKGROUND),
    ]
    for m in members:
        await m.start()
    try:
        await wait_for(
            lambda: all(len(m.account.members()) == 3 for m in members), "every member seen"
        )
        await wait_for(
            lambda: members[2].account.share < 5.0,
            "background squeezed by interactive demand",
        )
        shares = [m.account.share for m in members]
        assert sum(shares) <= cfg.capacity * 1.05, shares
        assert not any(m.account.degraded for m in members)
        assert all(m.budget.limit == pytest.approx(m.account.share) for m in members)
    finally:
        for m in members:
            await m.stop()


async def test_a_dead_replicas_share_returns_within_the_ttl(
    connect: Callable[[], Awaitable[Client]],
) -> None:
    cfg = config(f"budget_{uuid.uuid4().hex[:8]}")
    alive = Member(await connect(), cfg, "checkout", Lane.INTERACTIVE)
    crashed = Member(await connect(), cfg, "checkout", Lane.INTERACTIVE)
    left = Member(await connect(), cfg, "checkout", Lane.INTERACTIVE)
    for m in (alive, crashed, left):
        await m.start()
    try:
        await wait_for(lambda: len(alive.account.members()) == 3, "three members")
        await wait_for(lambda: alive.account.share < cfg.capacity / 2, "a third each")
        await left.stop(clean=True)
        await wait_for(lambda: len(alive.account.members()) == 2, "a clean stop leaves at once")
        await crashed.stop(clean=False)
        await wait_for(lambda: len(alive.account.members()) == 1, "a crashed member ages out")
        await wait_for(
            lambda: alive.account.share > cfg.capacity * 0.9, "the whole capacity comes back"
        )
    finally:
        await alive.stop()


async def test_without_nats_a_member_falls_back_to_a_conservative_share() -> None:
    server = NatsServer()
    server.start_sync()
    try:
        nc = await nats.connect(
            server.url, connect_timeout=2, max_reconnect_attempts=-1, reconnect_time_wait=0.2
        )
        cfg = config(f"budget_{uuid.uuid4().hex[:8]}", limit=100.0, fallback_fraction=0.1)
        member = Member(nc, cfg, "checkout", Lane.INTERACTIVE)
        assert member.account.share == cfg.fallback_share, "nothing known yet: the fallback"
        await member.start()
        await wait_for(lambda: member.account.share > 50.0, "alone: most of the capacity")
        server.stop_sync()
        await wait_for(
            lambda: (
                member.account.degraded
                and member.account.share == pytest.approx(cfg.fallback_share)
            ),
            "noticed NATS is gone and fell back",
        )
        assert member.budget.limit == pytest.approx(10.0), "never the whole limit"
        await member.stop()
        with contextlib.suppress(Exception):  # closing towards a dead server may raise
            await nc.close()
    finally:
        server.stop_sync()
