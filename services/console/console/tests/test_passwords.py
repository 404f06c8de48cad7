from __future__ import annotations

import pytest

from console.passwords import PasswordHashError, hash_password, parse, verify_password


def test_a_hash_verifies_its_password_and_no_other() -> None:
    stored = hash_password("correct horse battery", log2_n=10, r=8, p=1)
    assert stored.startswith("scrypt$10$8$1$")
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterY", stored)
    assert not verify_password("", stored)


def test_each_hash_has_its_own_salt() -> None:
    a, b = (hash_password("same password", log2_n=10, p=1) for _ in range(2))
    assert a != b
    assert verify_password("same password", a) and verify_password("same password", b)


def test_the_defaults_are_owasp_strength() -> None:
    log2_n, r, p, salt, key = parse(hash_password("x" * 12))
    assert (2**log2_n) * r * p >= 2**14 * 8 * 5  # OWASP: N=2^14, r=8, p=5 or stronger
    assert len(salt) == 16 and len(key) == 32


@pytest.mark.parametrize(
    "bad",
    ["", "plaintext", "bcrypt$2b$12$abc", "scrypt$14$8$5$salt", "scrypt$x$8$5$c2FsdA$a2V5",
     "scrypt$30$8$5$c2FsdHNhbHQ$a2V5", "scrypt$14$8$5$!!$a2V5"],
)  # fmt: skip
def test_a_malformed_hash_is_refused_without_repeating_it(bad: str) -> None:
    with pytest.raises(PasswordHashError) as err:
        verify_password("whatever", bad)
    assert bad not in str(err.value) or not bad


def test_an_empty_password_is_not_hashed() -> None:
    with pytest.raises(ValueError):
        hash_password("")
