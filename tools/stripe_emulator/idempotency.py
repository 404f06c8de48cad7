"""Stripe's idempotency layer, on the emulator's clock.

Keys are scoped to (API key's account, Stripe-Account, key). An entry is created when the
endpoint starts executing and holds the request fingerprint; when the request finishes, its
status and body are kept for `ttl` seconds of emulator time. Validation failures, 429s
and conflicts with a concurrent request store nothing.

A day of keys is a lot of answers (every POST of the SDK carries one): bodies are deflated
against the first answer of the same endpoint (they share most of their bytes), and an
entry keeps its fingerprint as a 16-byte digest in a slotted record.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["IdempotencyStore", "Replay"]

MAX_KEY_LENGTH = 255


@dataclass(slots=True)
class Entry:
    """A key whose request is still running."""

    fingerprint: bytes
    created: float


# A finished entry is one bytes object: fingerprint, created, status, dictionary slot, then
# the deflated answer.
_DONE = struct.Struct("<16sdHH")


@dataclass
class Replay:
    status: int
    body: bytes


class KeyInUse(Exception):
    pass


class Mismatch(Exception):
    pass


def fingerprint(method: str, path: str, body: bytes) -> bytes:
    return hashlib.blake2b(
        method.encode() + b" " + path.encode() + b"\n" + body, digest_size=16
    ).digest()


_WBITS = -13  # raw deflate, 8 KiB window (the dictionary fits it)
_DICT_BYTES = 1 << 13
_MAX_DICTS = 1024


class IdempotencyStore:
    def __init__(self) -> None:
        # Insertion order is creation order, so expiry sweeps from the front.
        self._entries: OrderedDict[tuple[str, str, str], Entry | bytes] = OrderedDict()
        self._zdicts: list[bytes] = [b""]
        self._slot_of: dict[str, int] = {}

    def clear(self) -> None:
        self._entries.clear()
        self._zdicts = [b""]
        self._slot_of = {}

    def _compress(self, body: bytes, endpoint: str) -> tuple[bytes, int]:
        slot = self._slot_of.get(endpoint)
        if slot is None:  # the endpoint's first answer becomes its dictionary
            slot = len(self._zdicts) if len(self._zdicts) < _MAX_DICTS else 0
            if slot:
                self._zdicts.append(body[-_DICT_BYTES:])
            self._slot_of[endpoint] = slot
        zdict = self._zdicts[slot]
        if zdict:
            c = zlib.compressobj(3, zlib.DEFLATED, _WBITS, 4, zlib.Z_DEFAULT_STRATEGY, zdict)
        else:
            c = zlib.compressobj(3, zlib.DEFLATED, _WBITS, 4)
        return c.compress(body) + c.flush(), slot

    def _decompress(self, slot: int, body: bytes) -> bytes:
        zdict = self._zdicts[slot]
        d = zlib.decompressobj(_WBITS, zdict) if zdict else zlib.decompressobj(_WBITS)
        return d.decompress(body)

    def __len__(self) -> int:
        return len(self._entries)

    def begin(
        self, scope: tuple[str, str, str], fp: bytes, now: float, ttl: float
    ) -> Replay | None:
        """Reserve the key, or return the stored answer to replay.

        Raises KeyInUse while the first request runs and Mismatch for other parameters.
        """
        self.sweep(now, ttl)
        entry = self._entries.get(scope)
        if entry is not None and _created(entry) + ttl <= now:
            del self._entries[scope]
            entry = None
        if entry is None:
            self._entries[scope] = Entry(fp, now)
            return None
        if isinstance(entry, Entry):
            if entry.fingerprint != fp:
                raise Mismatch()
            raise KeyInUse()
        stored_fp, _created_at, status, slot = _DONE.unpack_from(entry)
        if stored_fp != fp:
            raise Mismatch()
        return Replay(status, self._decompress(slot, entry[_DONE.size :]))

    def finish(
        self, scope: tuple[str, str, str], status: int, body: bytes, endpoint: str = ""
    ) -> None:
        entry = self._entries.get(scope)
        if isinstance(entry, Entry):
            packed, slot = self._compress(body, f"{endpoint} {status}")
            self._entries[scope] = _DONE.pack(entry.fingerprint, entry.created, status, slot) + (
                packed
            )

    def abandon(self, scope: tuple[str, str, str]) -> None:
        """The request stopped before the endpoint executed: keep nothing."""
        self._entries.pop(scope, None)

    def sweep(self, now: float, ttl: float, budget: int = 64) -> None:
        """Drop a bounded number of expired entries (amortised: no request pays for all)."""
        for _ in range(budget):
            if not self._entries:
                return
            scope, entry = next(iter(self._entries.items()))
            if isinstance(entry, Entry) or _created(entry) + ttl > now:
                return
            del self._entries[scope]


def _created(entry: Entry | bytes) -> float:
    if isinstance(entry, Entry):
        return entry.created
    created: float = _DONE.unpack_from(entry)[1]
    return created
