"""The console's users, from configuration: `CONSOLE_USERS=name:role:scrypt$...,...`.

Sign-in compares a password with the user's stored hash (see passwords.py) off the event
loop; an unknown name costs the same as a wrong password, so timing tells nobody which names
exist. Repeated failures for one name are refused for a while (per process).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .passwords import PasswordHashError, hash_password, parse, verify_password
from .roles import Role

__all__ = ["Directory", "User", "parse_users"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,39}$")


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    password_hash: str

    def fingerprint(self, secret: bytes) -> str:
        """Changes when the password does: a session made with the old one ends."""
        digest = hmac.new(secret, self.password_hash.encode(), hashlib.sha256).digest()
        return digest[:9].hex()


def parse_users(raw: str) -> dict[str, User]:
    """`name:role:hash,...` -> {name: User}; ValueError naming the entry (never its hash)."""
    users: dict[str, User] = {}
    for entry in filter(None, (e.strip() for e in raw.split(","))):
        name, _, rest = entry.partition(":")
        role, _, password_hash = rest.partition(":")
        if not _NAME.match(name):
            raise ValueError(f"user {name!r}: names are 1-40 of a-z 0-9 . _ - (lower case)")
        if role not in Role.__members__.values():
            roles = ", ".join(r.value for r in Role)
            raise ValueError(f"user {name!r}: role {role!r} is not one of {roles}")
        try:
            parse(password_hash)
        except PasswordHashError as exc:
            hint = "make one with: python -m console hash-password"
            raise ValueError(f"user {name!r}: {exc} ({hint})") from None
        if name in users:
            raise ValueError(f"user {name!r} is listed twice")
        users[name] = User(name, Role(role), password_hash)
    return users


class Directory:
    def __init__(
        self,
        users: dict[str, User],
        *,
        max_failures: int = 10,
        window_s: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.users = users
        self._max_failures = max_failures
        self._window_s = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        # Compared against when the name is unknown, at the same cost as a real user's hash.
        self._decoy = hash_password("decoy-password-never-matches")

    def get(self, name: str) -> User | None:
        return self.users.get(name)

    def locked(self, name: str) -> bool:
        recent = self._failures.get(name)
        if not recent:
            return False
        while recent and recent[0] < self._clock() - self._window_s:
            recent.popleft()
        return len(recent) >= self._max_failures

    async def authenticate(self, name: str, password: str) -> User | None:
        """The user if `password` is theirs; None otherwise (and while the name is locked)."""
        if self.locked(name):
            return None
        user = self.users.get(name)
        stored = user.password_hash if user else self._decoy
        ok = await asyncio.to_thread(verify_password, password, stored)
        if user is not None and ok:
            self._failures.pop(name, None)
            return user
        self._failures.setdefault(name, deque()).append(self._clock())
        if len(self._failures) > 10_000:  # bounded memory whatever names are tried
            self._failures.pop(next(iter(self._failures)))
        return None
