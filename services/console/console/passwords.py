"""Password hashes for the console's users: scrypt (hashlib), parameters stored in the hash.

    scrypt$<log2 n>$<r>$<p>$<salt>$<key>      salt and key in unpadded url-safe base64

The defaults (n=2^14, r=8, p=5: 16 MiB, about a second of CPU here) follow OWASP's scrypt
guidance; a stored hash keeps the parameters it was made with, so they can be raised later.
`python -m console hash-password` prints a hash for CONSOLE_USERS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

__all__ = ["PasswordHashError", "hash_password", "verify_password"]

_SCHEME = "scrypt"
_MAXMEM = 256 * 1024 * 1024
_KEY_LEN = 32


class PasswordHashError(ValueError):
    """A stored hash is not one this module wrote (the message never contains it)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, log2_n: int = 14, r: int = 8, p: int = 5) -> str:
    if not password:
        raise ValueError("an empty password cannot be hashed")
    salt = os.urandom(16)
    key = hashlib.scrypt(
        password.encode(), salt=salt, n=2**log2_n, r=r, p=p, maxmem=_MAXMEM, dklen=_KEY_LEN
    )
    return f"{_SCHEME}${log2_n}${r}${p}${_b64(salt)}${_b64(key)}"


def parse(encoded: str) -> tuple[int, int, int, bytes, bytes]:
    """(log2 n, r, p, salt, key) of a stored hash; PasswordHashError if malformed."""
    parts = encoded.split("$")
    try:
        if len(parts) != 6 or parts[0] != _SCHEME:
            raise ValueError
        log2_n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, key = _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        raise PasswordHashError("not a scrypt$... password hash") from None
    if not (10 <= log2_n <= 20 and 1 <= r <= 32 and 1 <= p <= 16) or len(salt) < 8 or not key:
        raise PasswordHashError("scrypt parameters out of range")
    return log2_n, r, p, salt, key


def verify_password(password: str, encoded: str) -> bool:
    """Whether `password` matches `encoded` (constant-time comparison of the derived keys)."""
    log2_n, r, p, salt, key = parse(encoded)
    derived = hashlib.scrypt(
        password.encode(), salt=salt, n=2**log2_n, r=r, p=p, maxmem=_MAXMEM, dklen=len(key)
    )
    return hmac.compare_digest(derived, key)
