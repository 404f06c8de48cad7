"""An in-memory IdempotencyBackend for unit tests (one process, no database).

It keeps the same rules as IdempotencyStore: replay, KeyReused, InProgress, lease takeover
with recovery points, expiry and sweeping. `clock` is settable so tests move time without
sleeping:

    clock = FakeClock()
    store = InMemoryIdempotencyStore(clock=clock)
    clock.advance(31)   # past the lease
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ._errors import InProgress, KeyReused, LeaseLost
from ._record import CODE_OK, Outcome, Record, Replay, Started, validate_scope

__all__ = ["FakeClock", "InMemoryIdempotencyStore"]


class FakeClock:
    """A clock for tests: starts at a fixed UTC instant and moves only when told."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class _Row:
    request_hash: str
    lease_token: str | None
    locked_until: datetime | None
    expires_at: datetime
    done: bool = False
    response: bytes = b""
    code: int = CODE_OK
    details: str = ""
    recovery_point: str | None = None
    recovery_data: dict[str, Any] | None = None


class InMemoryIdempotencyStore:
    def __init__(
        self,
        *,
        ttl_s: float = 86_400.0,
        lease_s: float = 30.0,
        clock: FakeClock | None = None,
    ) -> None:
        self.clock = clock or FakeClock()
        self._ttl = timedelta(seconds=ttl_s)
        self._lease = timedelta(seconds=lease_s)
        self.rows: dict[tuple[str, str, str], _Row] = {}

    async def begin(self, caller: str, method: str, key: str, request_hash: str) -> Outcome:
        validate_scope(caller, method, key)
        now = self.clock()
        scope = (caller, method, key)
        row = self.rows.get(scope)
        if row is None or self._expired(row, now):
            token = uuid.uuid4().hex
            self.rows[scope] = _Row(request_hash, token, now + self._lease, now + self._ttl)
            return Started(Record(caller, method, key, request_hash, token, self))
        if row.request_hash != request_hash:
            raise KeyReused(f"idempotency key {key!r} was used for a different request")
        if row.done:
            return Replay(row.response, row.code, row.details)
        if row.locked_until is not None and row.locked_until > now:
            raise InProgress(f"a request with idempotency key {key!r} is still in progress")
        row.lease_token = uuid.uuid4().hex
        row.locked_until = now + self._lease
        return Started(
            Record(
                caller,
                method,
                key,
                request_hash,
                row.lease_token,
                self,
                recovery_point=row.recovery_point,
                recovery_data=dict(row.recovery_data or {}),
                resumed=True,
            )
        )

    async def checkpoint(
        self, record: Record, point: str, data: dict[str, Any], *, session: Any = None
    ) -> None:
        # No database here: a checkpoint given the caller's session applies at once.
        row = self._owned(record)
        row.recovery_point, row.recovery_data = point, dict(data)
        row.locked_until = self.clock() + self._lease
        record.recovery_point, record.recovery_data = point, data

    async def renew(self, record: Record) -> None:
        self._owned(record).locked_until = self.clock() + self._lease

    async def finish(
        self, record: Record, response: bytes, code: int = CODE_OK, details: str = ""
    ) -> None:
        row = self._owned(record)
        row.done, row.response, row.code, row.details = True, response, code, details
        row.locked_until = None

    async def release(self, record: Record) -> bool:
        try:
            self._owned(record).locked_until = self.clock()
        except LeaseLost:
            return False
        return True

    async def abandon(self, record: Record) -> bool:
        try:
            self._owned(record)
        except LeaseLost:
            return False
        del self.rows[(record.caller, record.method, record.key)]
        return True

    async def sweep(self, now: datetime | None = None) -> int:
        at = now or self.clock()
        expired = [scope for scope, row in self.rows.items() if self._expired(row, at)]
        for scope in expired:
            del self.rows[scope]
        return len(expired)

    def _owned(self, record: Record) -> _Row:
        row = self.rows.get((record.caller, record.method, record.key))
        if row is None or row.done or row.lease_token != record.lease_token:
            raise LeaseLost(f"lost the lease on idempotency key {record.key!r}")
        return row

    @staticmethod
    def _expired(row: _Row, now: datetime) -> bool:
        lease_free = row.done or row.locked_until is None or row.locked_until <= now
        return row.expires_at <= now and lease_free
