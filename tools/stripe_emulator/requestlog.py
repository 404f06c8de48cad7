"""What the emulator received, so tests can count real calls to "Stripe".

Each entry is kept as one compact JSON bytes object (a dict each would cost several
hundred bytes more, times the 200,000 the log holds by default) and answered as a dict.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import orjson

__all__ = ["RequestLog"]


_FIELDS = (
    "request_id",
    "method",
    "path",
    "idempotency_key",
    "account",
    "status",
    "replayed",
    "created",
)
_FIELD_SET = frozenset(_FIELDS)


def _as_dict(packed: bytes) -> dict[str, Any]:
    entry = orjson.loads(packed)
    out = dict(zip(_FIELDS, entry, strict=False))
    if entry[-1]:
        out.update(entry[-1])
    return out


class RequestLog:
    def __init__(self, size: int) -> None:
        self._entries: deque[bytes] = deque(maxlen=size)

    def clear(self) -> None:
        self._entries.clear()

    def add(self, entry: dict[str, Any]) -> None:
        extra = {k: v for k, v in entry.items() if k not in _FIELD_SET} or None
        packed = orjson.dumps([*(entry.get(f) for f in _FIELDS), extra])
        # A copy: orjson's bytes keep its whole output buffer, several times the JSON's size.
        self._entries.append(bytes(memoryview(packed)))

    def query(
        self,
        method: str | None = None,
        path: str | None = None,
        path_prefix: str | None = None,
        idempotency_key: str | None = None,
        status: int | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        out = []
        for packed in self._entries:
            e = orjson.loads(packed)
            if method and e[1] != method:
                continue
            if path and e[2] != path:
                continue
            if path_prefix and not e[2].startswith(path_prefix):
                continue
            if idempotency_key and e[3] != idempotency_key:
                continue
            if status is not None and e[5] != status:
                continue
            out.append(packed)
        return [_as_dict(e) for e in (out[-limit:] if limit else out)]
