"""Circuit breaker: closed -> open -> half-open (one probe) -> closed or open again."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from payplane.stripe_gateway import BreakerState, StripeUnavailable
from payplane.stripe_gateway._breaker import BreakerOpen, CircuitBreaker
from payplane.stripe_gateway.testing import FakeClock, connection_error, stripe_error

from ._rig import Obj, Rig, script


def breaker(clock: FakeClock, **kw: object) -> CircuitBreaker:
    settings: dict[str, object] = {"threshold": 3, "failure_rate": None, "window": 10,
                                   "min_calls": 5, "cooldown_s": 30.0}  # fmt: skip
    settings.update(kw)
    return CircuitBreaker(now=clock.now, **settings)


def state(b: CircuitBreaker) -> BreakerState:
    return b.state  # a call, so mypy does not narrow the property across steps


def gateway_state(rig: Rig) -> BreakerState:
    return rig.gateway.breaker_state


def fail(b: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        b.failure(b.acquire())


def test_opens_after_consecutive_failures_only() -> None:
    b = breaker(FakeClock())
    fail(b, 2)
    b.success(b.acquire())  # resets the streak
    fail(b, 2)
    assert state(b) is BreakerState.CLOSED
    fail(b, 1)
    assert state(b) is BreakerState.OPEN
    with pytest.raises(BreakerOpen):
        b.acquire()


def test_opens_on_the_failure_rate_over_the_window() -> None:
    b = breaker(FakeClock(), threshold=100, failure_rate=0.5, window=10, min_calls=6)
    for _ in range(3):  # alternate: never 2 in a row, but half of them fail
        b.failure(b.acquire())
        assert state(b) is BreakerState.CLOSED
        b.success(b.acquire())
    assert state(b) is BreakerState.CLOSED  # 3/6 is 50 % only once the 6th is in
    b.failure(b.acquire())
    assert state(b) is BreakerState.OPEN


def test_half_open_lets_exactly_one_probe_through() -> None:
    clock = FakeClock()
    b = breaker(clock)
    fail(b, 3)
    clock.jump(29.9)
    with pytest.raises(BreakerOpen):
        b.acquire()
    clock.jump(0.1)
    assert state(b) is BreakerState.HALF_OPEN
    probe = b.acquire()
    assert probe.probe
    with pytest.raises(BreakerOpen):
        b.acquire()  # one probe at a time
    b.success(probe)
    assert state(b) is BreakerState.CLOSED
    assert not b.acquire().probe


def test_a_failed_probe_opens_it_for_another_cooldown() -> None:
    clock = FakeClock()
    b = breaker(clock)
    fail(b, 3)
    clock.jump(30)
    b.failure(b.acquire())
    assert state(b) is BreakerState.OPEN
    clock.jump(29)
    with pytest.raises(BreakerOpen):
        b.acquire()
    clock.jump(1)
    assert b.acquire().probe


def test_a_probe_without_verdict_lets_another_probe_go() -> None:
    clock = FakeClock()
    b = breaker(clock)
    fail(b, 3)
    clock.jump(30)
    b.release(b.acquire())  # e.g. the probe's caller was cancelled
    assert b.acquire().probe


def test_a_permit_taken_while_closed_is_void_once_open() -> None:
    b = breaker(FakeClock())
    early = b.acquire()
    fail(b, 3)
    with pytest.raises(BreakerOpen):
        b.check(early)


async def test_gateway_fails_fast_while_open_and_recovers(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(max_attempts=6, breaker_failure_threshold=3, breaker_cooldown_s=60.0)
    down = script(*[stripe_error(500) for _ in range(6)])
    with pytest.raises(StripeUnavailable) as first:
        await rig.gateway.call("customers.create", down, idempotency_key="a")
    assert down.attempts == 3, "the breaker stops the call's own retries too"
    assert first.value.breaker_open and first.value.ambiguous  # the 500s may have run
    assert gateway_state(rig) is BreakerState.OPEN

    untouched = script(Obj("never"))
    with pytest.raises(StripeUnavailable) as fast:
        await rig.gateway.call("customers.create", untouched, idempotency_key="b")
    assert untouched.attempts == 0, "no attempt reaches Stripe while open"
    assert fast.value.breaker_open and not fast.value.ambiguous  # nothing was sent

    rig.clock.jump(60.0)
    probe = script(Obj("cus_1"))
    assert (await rig.gateway.call("customers.create", probe, idempotency_key="c")).id == "cus_1"
    assert gateway_state(rig) is BreakerState.CLOSED


async def test_gateway_probe_failure_reopens(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(max_attempts=3, breaker_failure_threshold=3, breaker_cooldown_s=60.0)
    with pytest.raises(StripeUnavailable):
        await rig.gateway.call(
            "x", script(*[connection_error() for _ in range(3)]), idempotency_key="a"
        )
    rig.clock.jump(60.0)
    probe = script(stripe_error(503), Obj("never"))
    with pytest.raises(StripeUnavailable) as caught:
        await rig.gateway.call("x", probe, idempotency_key="b")
    assert probe.attempts == 1 and caught.value.breaker_open
    assert gateway_state(rig) is BreakerState.OPEN


@pytest.mark.parametrize(
    "answer",
    [
        lambda: stripe_error(429, code="rate_limit"),
        lambda: stripe_error(402, decline_code="generic_decline"),
        lambda: stripe_error(404),
    ],
    ids=["429", "402", "404"],
)
async def test_answers_from_stripe_do_not_open_it(
    make_rig: Callable[..., Rig], answer: Callable[[], BaseException]
) -> None:
    rig = make_rig(max_attempts=1, breaker_failure_threshold=2)
    for i in range(5):
        with pytest.raises(Exception):  # noqa: B017 (the kind is not the point here)
            await rig.gateway.call("x", script(answer()), idempotency_key=f"k{i}")
    assert gateway_state(rig) is BreakerState.CLOSED
