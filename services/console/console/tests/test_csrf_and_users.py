from __future__ import annotations

import pytest

from console.csrf import origin_allowed, token_matches
from console.passwords import hash_password
from console.roles import SHOWN, Role, may
from console.settings import parse_credentials
from console.users import Directory, parse_users

FAST = {"log2_n": 10, "p": 1}


def test_csrf_tokens_must_match_exactly() -> None:
    assert token_matches("abc123", "abc123")
    assert not token_matches("abc123", "abc124")
    assert not token_matches("abc123", None)
    assert not token_matches("abc123", "")
    assert not token_matches("", "")


def test_only_this_sites_origin_passes() -> None:
    assert origin_allowed(None, "console.example:8100")
    assert origin_allowed("http://console.example:8100", "console.example:8100")
    assert origin_allowed("https://console.example:8100", "console.example:8100")
    assert not origin_allowed("https://evil.example", "console.example:8100")
    assert not origin_allowed("null", "console.example:8100")
    assert not origin_allowed("http://console.example:8101", "console.example:8100")


def test_users_parse_with_roles_and_hashes() -> None:
    h = hash_password("pw-for-test-user", **FAST)
    users = parse_users(f"alice:reviewer:{h}, bob:finance:{h}")
    assert {n: u.role for n, u in users.items()} == {"alice": Role.REVIEWER, "bob": Role.FINANCE}


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ("alice:wizard:{h}", "role 'wizard'"),
        ("alice:reviewer:plaintext", "hash-password"),
        ("Alice:reviewer:{h}", "names are"),
        ("alice:reviewer:{h},alice:admin:{h}", "twice"),
    ],
)
def test_bad_users_are_named_without_their_hash(raw: str, named: str) -> None:
    h = hash_password("pw-for-test-user", **FAST)
    with pytest.raises(ValueError) as err:
        parse_users(raw.format(h=h))
    assert named in str(err.value) and h not in str(err.value)


def test_credentials_name_the_role_never_the_token() -> None:
    assert parse_credentials("reviewer=t1,admin=t2") == {Role.REVIEWER: "t1", Role.ADMIN: "t2"}
    with pytest.raises(ValueError) as err:
        parse_credentials("storefront=secret-token")
    assert "storefront" in str(err.value) and "secret-token" not in str(err.value)


async def test_sign_in_checks_the_password_and_locks_after_repeated_failures() -> None:
    h = hash_password("alice-password", **FAST)
    directory = Directory(parse_users(f"alice:reviewer:{h}"), max_failures=3)
    assert (await directory.authenticate("alice", "alice-password")) is not None
    assert await directory.authenticate("alice", "wrong") is None
    assert await directory.authenticate("nobody", "alice-password") is None
    assert await directory.authenticate("alice", "wrong") is None
    assert await directory.authenticate("alice", "wrong") is None
    assert directory.locked("alice")
    assert await directory.authenticate("alice", "alice-password") is None  # locked out


def test_what_each_role_is_shown() -> None:
    assert may(Role.REVIEWER, "reviews.decide")
    assert not any(may(r, "reviews.decide") for r in (Role.SUPPORT, Role.ADMIN, Role.FINANCE))
    assert {r for r in Role if may(r, "discrepancies.resolve")} == {Role.FINANCE, Role.ADMIN}
    assert not may(Role.FINANCE, "payments.read")  # checkout does not let finance read payments
    assert set(SHOWN) == set(Role)


def test_redirects_after_sign_in_stay_on_this_site() -> None:
    from console.web import local_path

    assert local_path("/reviews?status=open") == "/reviews?status=open"
    for target in ("//evil.example/", "/\\evil.example", "https://evil.example/", "",
                   "/a\r\nSet-Cookie: x=1", None):  # fmt: skip
        assert local_path(target) == "/"
