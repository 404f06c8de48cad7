"""What a caller sends never comes back unbounded; page tokens open only as they were sealed."""

from __future__ import annotations

import base64

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from payplane.grpckit import MAX_PAGE_TOKEN, PageTokens, create_server, errors, idempotency_metadata
from payplane.grpckit import channel as open_channel
from payplane.grpckit.testing import (
    ECHO_SERVICE,
    MUTATE,
    Behaviour,
    EchoClient,
    EchoServicer,
    echo_auth,
    echo_service,
)
from payplane.idempotency.testing import InMemoryIdempotencyStore

KEY = b"k" * 32


async def test_a_huge_echoed_value_is_cut_not_resource_exhausted() -> None:
    """Issue 8, defect 8: a 100 KB id echoed in NOT_FOUND used to exceed the metadata limit."""
    server, port = await create_server(
        services=[echo_service(EchoServicer())],
        service_names=[ECHO_SERVICE],
        auth=echo_auth(),
        idempotency=InMemoryIdempotencyStore(),
        mutating_methods={MUTATE},
    )
    try:
        async with open_channel(f"127.0.0.1:{port}", "tok-storefront") as ch:
            huge = "a" * 100_000
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await EchoClient(ch).mutate(
                    huge, 100, Behaviour.UNKNOWN_ACCOUNT, metadata=idempotency_metadata("k")
                )
    finally:
        await server.stop(None)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    details = err.value.details() or ""
    assert len(details) <= errors.MAX_DETAILS
    assert details.startswith("account 'aaaa") and details.endswith("(cut)")


def test_bounded_and_shown() -> None:
    assert errors.bounded("short") == "short"
    assert len(errors.bounded("x" * 5_000)) == errors.MAX_DETAILS
    assert errors.shown("pay_1") == "'pay_1'"
    long = errors.shown("p" * 10_000)
    assert len(long) < 120 and "10000 characters" in long


def test_a_sealed_cursor_opens_in_its_scope_only() -> None:
    tokens = PageTokens(KEY)
    scope = PageTokens.scope("/svc/List", "cust-1", None)
    token = tokens.seal(scope, "1700000000.5|pay_1")
    assert "pay_1" not in token  # opaque: callers should not build on its contents
    assert tokens.open(scope, token) == "1700000000.5|pay_1"
    assert tokens.seal(scope, "") == "" and tokens.open(scope, "") == ""
    for other in (PageTokens.scope("/svc/List", "cust-2", None), PageTokens.scope("/svc/Other")):
        with pytest.raises(errors.InvalidArgument, match="page_token"):
            tokens.open(other, token)
    with pytest.raises(errors.InvalidArgument):
        PageTokens(b"another key, 32 bytes long......").open(scope, token)


def _forged(cursor: str) -> str:
    return base64.urlsafe_b64encode(b"\x01" + b"\x00" * 16 + cursor.encode()).decode()


@pytest.mark.parametrize(
    "token",
    [
        "1e300|pay_x",
        base64.urlsafe_b64encode(b"1e300|pay_x").decode(),
        _forged("1e300|pay_x"),
        _forged("99999999999999999999999"),
        "!!!",
        "A" * (MAX_PAGE_TOKEN + 1),
        "=",
    ],
)
def test_forged_tokens_are_invalid_argument(token: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=r"page\.page_token"):
        PageTokens(KEY).open("scope", token)


@given(st.text(max_size=300), st.text(min_size=1, max_size=200))
def test_any_edit_of_a_token_is_refused(scope: str, cursor: str) -> None:
    tokens = PageTokens(KEY)
    token = tokens.seal(scope, cursor)
    assert tokens.open(scope, token) == cursor
    for i in range(len(token)):
        flipped = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
        try:
            opened = tokens.open(scope, flipped)
        except errors.InvalidArgument:
            continue
        # base64's last character may carry unused bits: an edit there decodes the same.
        assert opened == cursor


def test_field_checks_name_the_field_and_never_repeat_the_value() -> None:
    from google.protobuf.timestamp_pb2 import Timestamp

    from payplane.grpckit import fields

    assert fields.object_id("pay_0a1b", "payment_id") == "pay_0a1b"
    assert fields.object_id("", "run_id", required=False) == ""
    for bad in ("", "pay_" + "x" * 100, "pay-1", "4242424242424242 ", "p\x00"):
        with pytest.raises(errors.InvalidArgument, match=r"^payment_id: ") as err:
            fields.object_id(bad, "payment_id")
        assert not bad or bad not in str(err.value)
    assert fields.text("ok", "reason", 10) == "ok"
    for bad in ("x" * 11, "a\x00b"):
        with pytest.raises(errors.InvalidArgument, match=r"^reason: "):
            fields.text(bad, "reason", 10)
    assert fields.timestamp(Timestamp(seconds=fields.LATEST), "as_of").year == 9999
    for seconds, nanos in ((fields.LATEST + 1, 0), (-1, 0), (2**62, 0), (0, -1), (0, 10**9)):
        with pytest.raises(errors.InvalidArgument, match=r"^as_of: out of range"):
            fields.timestamp(Timestamp(seconds=seconds, nanos=nanos), "as_of")
