"""Every attempt of a call is the same request for Stripe: same key, same account."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from payplane.stripe_gateway import StripeUnavailable
from payplane.stripe_gateway.testing import connection_error, stripe_error

from ._rig import Obj, Rig, script


async def test_the_callers_key_is_sent_on_every_attempt(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    fn = script(
        connection_error(sent=True), stripe_error(500), stripe_error(429, code="lock_timeout"),
        stripe_error(409, code="idempotency_key_in_use"), Obj("cus_1"),
    )  # fmt: skip
    await rig.gateway.call("customers.create", fn, idempotency_key="order-42")
    assert fn.keys == ["order-42"] * 5


async def test_a_generated_key_is_one_per_call_not_per_attempt(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig()
    first = script(stripe_error(500), connection_error(), Obj("cus_1"))
    second = script(stripe_error(503), Obj("cus_2"))
    await rig.gateway.call("customers.create", first, idempotency_key=None)
    await rig.gateway.call("customers.create", second, idempotency_key=None)
    assert len(set(first.keys)) == 1 and len(set(second.keys)) == 1
    assert first.keys[0] != second.keys[0]
    assert all(k and len(k) <= 255 for k in first.keys + second.keys)


async def test_the_key_is_reported_on_failure(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(max_attempts=2)
    fn = script(stripe_error(500), stripe_error(500))
    with pytest.raises(StripeUnavailable) as caught:
        await rig.gateway.call("customers.create", fn, idempotency_key=None)
    assert caught.value.idempotency_key == fn.keys[0]
    assert caught.value.operation == "customers.create"


async def test_stripe_account_travels_in_the_options(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(stripe_account="acct_123")
    fn = script(stripe_error(500), Obj("cus_1"))
    await rig.gateway.call("customers.create", fn, idempotency_key="k")
    assert [o["stripe_account"] for o in fn.options] == ["acct_123", "acct_123"]
    assert all(o["max_network_retries"] == 0 for o in fn.options), "the SDK must not retry too"


async def test_a_fresh_options_dict_per_attempt(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    seen: list[str | None] = []

    async def mutating(client: object, options: dict[str, object]) -> Obj:
        seen.append(options.get("idempotency_key"))
        options["idempotency_key"] = "tampered"
        if len(seen) < 3:
            raise stripe_error(500)
        return Obj("cus_1")

    await rig.gateway.call("customers.create", mutating, idempotency_key="k")
    assert seen == ["k", "k", "k"]


@pytest.mark.parametrize("bad", ["", "x" * 256])
async def test_bad_keys_are_refused_before_any_attempt(
    make_rig: Callable[..., Rig], bad: str
) -> None:
    rig = make_rig()
    fn = script(Obj("never"))
    with pytest.raises(ValueError):
        await rig.gateway.call("customers.create", fn, idempotency_key=bad)
    assert fn.attempts == 0
