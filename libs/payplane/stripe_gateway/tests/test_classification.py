"""Which failures retry, what each one ends as, and the decline advice table."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from payplane.stripe_gateway import (
    AuthFailed,
    CardDeclined,
    Conflict,
    Forbidden,
    GatewayError,
    IdempotencyConflict,
    InvalidRequest,
    NotFound,
    RateLimited,
    StripeUnavailable,
    decline_advice,
)
from payplane.stripe_gateway.testing import connection_error, stripe_error

from ._rig import Obj, Rig, script

RETRIED = [
    ("500", lambda: stripe_error(500), StripeUnavailable),
    ("502", lambda: stripe_error(502), StripeUnavailable),
    ("503", lambda: stripe_error(503), StripeUnavailable),
    ("409 lock", lambda: stripe_error(409, code="lock_timeout"), Conflict),
    ("409 key in use", lambda: stripe_error(409, code="idempotency_key_in_use"), Conflict),
    (
        "429 rate_limit",
        lambda: stripe_error(
            429, code="rate_limit", headers={"Stripe-Rate-Limited-Reason": "global-rate"}
        ),
        RateLimited,
    ),
    ("429 lock_timeout", lambda: stripe_error(429, code="lock_timeout"), RateLimited),
    ("400 rate_limit (old style)", lambda: stripe_error(400, code="rate_limit"), RateLimited),
    ("connection reset", lambda: connection_error(sent=True), StripeUnavailable),
    ("connection refused", lambda: connection_error(sent=False), StripeUnavailable),
    ("timeout", lambda: TimeoutError("read timed out"), StripeUnavailable),
]

NOT_RETRIED = [
    ("400", lambda: stripe_error(400, code="parameter_invalid_integer", param="amount"),
     InvalidRequest),
    ("400 idempotency", lambda: stripe_error(400, type="idempotency_error"), IdempotencyConflict),
    ("401", lambda: stripe_error(401), AuthFailed),
    ("402", lambda: stripe_error(402, code="card_declined", decline_code="lost_card"),
     CardDeclined),
    ("403", lambda: stripe_error(403), Forbidden),
    ("404", lambda: stripe_error(404, code="resource_missing", param="id"), NotFound),
    ("422", lambda: stripe_error(422), InvalidRequest),
]  # fmt: skip


@pytest.mark.parametrize(("name", "make", "error"), RETRIED, ids=[r[0] for r in RETRIED])
async def test_retryable_failures_use_every_attempt(
    make_rig: Callable[..., Rig],
    name: str,
    make: Callable[[], BaseException],
    error: type[GatewayError],
) -> None:
    rig = make_rig(max_attempts=4, breaker_failure_threshold=100)
    fn = script(*[make() for _ in range(4)])
    with pytest.raises(error) as caught:
        await rig.gateway.call("customers.create", fn, idempotency_key="k")
    assert fn.attempts == 4 and caught.value.attempts == 4


@pytest.mark.parametrize(("name", "make", "error"), RETRIED, ids=[r[0] for r in RETRIED])
async def test_retryable_failures_then_success(
    make_rig: Callable[..., Rig],
    name: str,
    make: Callable[[], BaseException],
    error: type[GatewayError],
) -> None:
    rig = make_rig(max_attempts=4)
    fn = script(make(), make(), Obj("cus_ok"))
    assert (await rig.gateway.call("customers.create", fn, idempotency_key="k")).id == "cus_ok"
    assert fn.attempts == 3


@pytest.mark.parametrize(("name", "make", "error"), NOT_RETRIED, ids=[r[0] for r in NOT_RETRIED])
async def test_definitive_answers_are_not_retried(
    make_rig: Callable[..., Rig],
    name: str,
    make: Callable[[], BaseException],
    error: type[GatewayError],
) -> None:
    rig = make_rig()
    fn = script(make(), Obj("never"))
    with pytest.raises(error) as caught:
        await rig.gateway.call("customers.create", fn, idempotency_key="k")
    assert fn.attempts == 1 and rig.clock.sleeps == []
    assert caught.value.request_id == "req_fake" and caught.value.ambiguous is False


async def test_should_retry_true_forces_a_retry_of_a_400(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    fn = script(stripe_error(400, headers={"Stripe-Should-Retry": "true"}), Obj("cus_ok"))
    assert (await rig.gateway.call("customers.create", fn, idempotency_key="k")).id == "cus_ok"
    assert fn.attempts == 2


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [(500, None, StripeUnavailable), (429, "rate_limit", RateLimited), (409, None, Conflict)],
)
async def test_should_retry_false_forbids_a_retry(
    make_rig: Callable[..., Rig], status: int, code: str | None, error: type[GatewayError]
) -> None:
    rig = make_rig()
    # Header names arrive in any case (aiohttp and httpx keep the server's spelling).
    fn = script(stripe_error(status, code=code, headers={"stripe-should-retry": "false"}))
    with pytest.raises(error):
        await rig.gateway.call("customers.create", fn, idempotency_key="k")
    assert fn.attempts == 1


async def test_card_declined_carries_advice_and_ids(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    fn = script(
        stripe_error(
            402, code="card_declined", decline_code="insufficient_funds",
            message="Your card has insufficient funds.", payment_intent="pi_1", charge="ch_1",
        )
    )  # fmt: skip
    with pytest.raises(CardDeclined) as caught:
        await rig.gateway.call("payment_intents.create", fn, idempotency_key="k")
    err = caught.value
    assert (err.code, err.decline_code, err.advice) == ("card_declined", "insufficient_funds",
                                                        "dunning")  # fmt: skip
    assert (err.payment_intent_id, err.charge_id) == ("pi_1", "ch_1")
    assert err.message == "Your card has insufficient funds." and err.http_status == 402


async def test_invalid_request_names_the_param(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    fn = script(stripe_error(400, code="parameter_missing", param="currency"))
    with pytest.raises(InvalidRequest) as caught:
        await rig.gateway.call("payment_intents.create", fn, idempotency_key="k")
    assert (caught.value.param, caught.value.code) == ("currency", "parameter_missing")


async def test_rate_limited_names_the_reason(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(max_attempts=2)
    limited = {"Stripe-Rate-Limited-Reason": "endpoint-rate"}
    fn = script(*[stripe_error(429, code="rate_limit", headers=limited) for _ in range(2)])
    with pytest.raises(RateLimited) as caught:
        await rig.gateway.call("customers.list", fn, idempotency_key=None)
    assert caught.value.reason == "endpoint-rate" and caught.value.ambiguous is False


async def test_a_connection_refused_is_not_ambiguous(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(max_attempts=3)
    fn = script(*[connection_error(sent=False) for _ in range(3)])
    with pytest.raises(StripeUnavailable) as caught:
        await rig.gateway.call("customers.create", fn, idempotency_key="k")
    assert caught.value.ambiguous is False and caught.value.breaker_open is False


@pytest.mark.parametrize(
    "first", [lambda: connection_error(sent=True), lambda: stripe_error(500)], ids=["reset", "500"]
)
async def test_ambiguity_sticks_until_an_answer_settles_it(
    make_rig: Callable[..., Rig], first: Callable[[], BaseException]
) -> None:
    rig = make_rig(max_attempts=3)
    fn = script(first(), connection_error(sent=False), connection_error(sent=False))
    with pytest.raises(StripeUnavailable) as caught:
        await rig.gateway.call("customers.create", fn, idempotency_key="k")
    assert caught.value.ambiguous is True, "the first attempt may have taken effect"

    rig = make_rig(max_attempts=3)
    fn = script(first(), stripe_error(402, decline_code="do_not_honor"))
    with pytest.raises(CardDeclined) as declined:
        await rig.gateway.call("payment_intents.create", fn, idempotency_key="k")
    assert declined.value.ambiguous is False, "a decline under the same key settles it"


async def test_a_bug_in_fn_propagates_untouched(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    fn = script(KeyError("oops"), Obj("never"))
    with pytest.raises(KeyError):
        await rig.gateway.call("customers.create", fn, idempotency_key="k")
    assert fn.attempts == 1


@pytest.mark.parametrize(
    ("code", "advice"),
    [
        ("processing_error", "retry_later"), ("try_again_later", "retry_later"),
        ("issuer_not_available", "retry_later"), ("reenter_transaction", "retry_later"),
        ("insufficient_funds", "dunning"), ("card_velocity_exceeded", "dunning"),
        ("withdrawal_count_limit_exceeded", "dunning"),
        ("incorrect_cvc", "customer_action"), ("expired_card", "customer_action"),
        ("authentication_required", "customer_action"), ("generic_decline", "customer_action"),
        ("do_not_honor", "customer_action"), ("currency_not_supported", "customer_action"),
        ("lost_card", "never"), ("stolen_card", "never"), ("pickup_card", "never"),
        ("fraudulent", "never"), ("merchant_blacklist", "never"),
        ("security_violation", "never"), ("revocation_of_authorization", "never"),
        ("do_not_try_again", "never"),
        ("something_new", "customer_action"), (None, "customer_action"),
    ],
)  # fmt: skip
def test_decline_advice_table(code: str | None, advice: str) -> None:
    assert decline_advice(code) == advice


def test_card_error_code_stands_in_for_a_missing_decline_code() -> None:
    assert CardDeclined("Your card has expired.", code="expired_card").advice == "customer_action"
    assert CardDeclined("x", code="card_declined", decline_code="lost_card").advice == "never"
