from __future__ import annotations

from dataclasses import replace

import pytest

from console.sessions import SessionCodec

SECRET = "s" * 40


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def codec(clock: Clock, secret: str = SECRET) -> SessionCodec:
    return SessionCodec(secret, max_age_s=3600, idle_s=600, clock=clock)


def test_a_session_round_trips() -> None:
    c = codec(Clock())
    s = replace(c.signed_in("alice", "fp1"), flash="ok:done")
    assert c.decode(c.encode(s)) == s


def test_a_tampered_or_foreign_cookie_is_no_session() -> None:
    clock = Clock()
    c = codec(clock)
    value = c.encode(c.signed_in("alice", "fp1"))
    payload, signature = value.split(".")
    forged = c.encode(c.signed_in("mallory", "fp1")).split(".")[0]
    assert c.decode(f"{forged}.{signature}") is None  # someone else's payload, alice's seal
    assert c.decode(payload) is None
    assert c.decode(value[:-2] + ("AA" if value[-2:] != "AA" else "BB")) is None
    assert codec(clock, "t" * 40).decode(value) is None  # another secret
    assert c.decode("not-a-cookie") is None and c.decode("a.b") is None


def test_a_session_ends_after_its_lifetime_even_when_used() -> None:
    clock = Clock()
    c = codec(clock)
    s = c.signed_in("alice", "fp1")
    for _ in range(7):
        clock.now += 500
        s = c.touched(s)
        assert c.decode(c.encode(s)) is not None
    clock.now += 500  # 4000 s after sign-in
    assert c.decode(c.encode(c.touched(s))) is None


def test_a_signed_in_session_ends_when_idle() -> None:
    clock = Clock()
    c = codec(clock)
    value = c.encode(c.signed_in("alice", "fp1"))
    clock.now += 599
    assert c.decode(value) is not None
    clock.now += 2
    assert c.decode(value) is None


def test_an_anonymous_session_only_carries_a_csrf_token() -> None:
    clock = Clock()
    c = codec(clock)
    anon = c.anonymous()
    assert not anon.signed_in and len(anon.csrf) >= 40
    clock.now += 1_000  # anonymous sessions do not idle out (the sign-in form stays valid)
    assert c.decode(c.encode(anon)) == anon


def test_signing_in_issues_a_new_csrf_token() -> None:
    c = codec(Clock())
    assert c.anonymous().csrf != c.signed_in("alice", "fp").csrf


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        SessionCodec("short", max_age_s=1, idle_s=1)
