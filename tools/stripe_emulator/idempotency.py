"""Stripe's idempotency layer, on the emulator's clock.

Keys are scoped to (API key's account, Stripe-Account, key). An entry is created when the
endpoint starts executing and holds the request fingerprint; when the request finishes, its
status and body (compressed) are kept for `ttl` seconds of emulator time. Validation
failures, 429s and conflicts with a concurrent request store nothing.
"""

from __future__ import annotations

import hashlib
import zlib
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["IdempotencyStore", "Replay"]

MAX_KEY_LENGTH = 255


@dataclass
class Entry:
    fingerprint: str
    created: float
    running: bool = True
    status: int = 0
    body: bytes = b""


@dataclass
class Replay:
    status: int
    body: bytes


class KeyInUse(Exception):
    pass


class Mismatch(Exception):
    pass


def fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.blake2b(
        method.encode() + b" " + path.encode() + b"\n" + body, digest_size=16
    ).hexdigest()


class IdempotencyStore:
    def __init__(self) -> None:
        # Insertion order is creation order, so expiry sweeps from the front.
        self._entries: OrderedDict[tuple[str, str, str], Entry] = OrderedDict()

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def begin(self, scope: tuple[str, str, str], fp: str, now: float, ttl: float) -> Replay | None:
        """Reserve the key, or return the stored answer to replay.

        Raises KeyInUse while the first request runs and Mismatch for other parameters.
        """
        self.sweep(now, ttl)
        entry = self._entries.get(scope)
        if entry is not None and entry.created + ttl <= now:
            del self._entries[scope]
            entry = None
        if entry is None:
            self._entries[scope] = Entry(fp, now)
            return None
        if entry.fingerprint != fp:
            raise Mismatch()
        if entry.running:
            raise KeyInUse()
        return Replay(entry.status, zlib.decompress(entry.body))

    def finish(self, scope: tuple[str, str, str], status: int, body: bytes) -> None:
        entry = self._entries.get(scope)
        if entry is not None:
            entry.running = False
            entry.status = status
            entry.body = zlib.compress(body, 1)

    def abandon(self, scope: tuple[str, str, str]) -> None:
        """The request stopped before the endpoint executed: keep nothing."""
        self._entries.pop(scope, None)

    def sweep(self, now: float, ttl: float, budget: int = 64) -> None:
        """Drop a bounded number of expired entries (amortised: no request pays for all)."""
        for _ in range(budget):
            if not self._entries:
                return
            scope, entry = next(iter(self._entries.items()))
            if entry.created + ttl > now or entry.running:
                return
            del self._entries[scope]
