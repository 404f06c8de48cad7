"""What the emulator received, so tests can count real calls to "Stripe"."""

from __future__ import annotations

from collections import deque
from typing import Any

__all__ = ["RequestLog"]


class RequestLog:
    def __init__(self, size: int) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=size)

    def clear(self) -> None:
        self._entries.clear()

    def add(self, entry: dict[str, Any]) -> None:
        self._entries.append(entry)

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
        for e in self._entries:
            if method and e["method"] != method:
                continue
            if path and e["path"] != path:
                continue
            if path_prefix and not e["path"].startswith(path_prefix):
                continue
            if idempotency_key and e["idempotency_key"] != idempotency_key:
                continue
            if status is not None and e["status"] != status:
                continue
            out.append(e)
        return out[-limit:] if limit else out
