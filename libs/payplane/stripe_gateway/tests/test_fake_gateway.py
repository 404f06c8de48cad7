"""The fake other services use in their unit tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import stripe

from payplane.stripe_gateway import (
    CardDeclined,
    Gateway,
    Lane,
    StripeUnavailable,
    deterministic_key,
)
from payplane.stripe_gateway.testing import FakeGateway

from ._rig import Obj, Rig


async def create(gw: Gateway, key: str | None) -> Obj:
    return await gw.call(
        "customers.create",
        lambda c, o: c.v1.customers.create_async(options=o),  # type: ignore[return-value]
        idempotency_key=key,
    )


async def test_scripted_outcomes_play_in_order_and_calls_are_recorded() -> None:
    gw = FakeGateway()
    gw.respond("customers.create", Obj("cus_1"), CardDeclined("no", decline_code="lost_card"))
    assert (await create(gw, "k1")).id == "cus_1"
    with pytest.raises(CardDeclined) as caught:
        await create(gw, "k2")
    assert caught.value.advice == "never" and caught.value.idempotency_key == "k2"
    assert gw.keys("customers.create") == ["k1", "k2"]
    assert [c.lane for c in gw.calls] == [Lane.INTERACTIVE, Lane.INTERACTIVE]


async def test_a_repeated_key_replays_like_stripe() -> None:
    gw = FakeGateway()
    key = deterministic_key("signup", "u1")
    gw.respond("customers.create", Obj("cus_1"), Obj("cus_2"))
    first, again = await create(gw, key), await create(gw, key)
    assert first.id == again.id == "cus_1"
    assert [c.replayed for c in gw.calls] == [False, True]


async def test_outages_are_not_stored_against_the_key() -> None:
    gw = FakeGateway()
    gw.respond("customers.create", StripeUnavailable("down", ambiguous=True), Obj("cus_1"))
    with pytest.raises(StripeUnavailable):
        await create(gw, "k")
    assert (await create(gw, "k")).id == "cus_1"


async def test_without_a_script_the_call_names_the_operation() -> None:
    with pytest.raises(AssertionError, match=r"customers\.create"):
        await create(FakeGateway(), "k")


async def test_without_a_script_fn_runs_on_the_given_client() -> None:
    seen: list[stripe.RequestOptions] = []

    async def fn(client: stripe.StripeClient, options: stripe.RequestOptions) -> str:
        seen.append(options)
        return "ran"

    gw = FakeGateway(client=stripe.StripeClient("sk_test_unused"), stripe_account="acct_1")
    assert await gw.call("x", fn, idempotency_key=None) == "ran"
    assert seen[0]["stripe_account"] == "acct_1" and seen[0]["idempotency_key"]


def test_the_real_and_the_fake_gateway_share_one_protocol(make_rig: Callable[..., Rig]) -> None:
    gateways: list[Gateway] = [make_rig().gateway, FakeGateway()]  # checked by mypy
    assert all(callable(g.call) for g in gateways)
