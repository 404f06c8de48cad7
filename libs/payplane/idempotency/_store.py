from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, delete, event, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from ._errors import InProgress, KeyReused, LeaseLost
from ._record import CODE_OK, Outcome, Record, Replay, Started, validate_scope

__all__ = ["IdempotencyStore", "utcnow"]

log = logging.getLogger("payplane.idempotency")

RUNNING = "running"
DONE = "done"
# A begin() loses a race only when another attempt changed the row between our statements
# (a sweep, an expiry reset, a takeover); a few rounds always settle it.
_MAX_ROUNDS = 5


def utcnow() -> datetime:
    return datetime.now(UTC)


class IdempotencyStore:
    """Idempotency records in a SQL table (SQLite or PostgreSQL), safe under concurrent retries.

    Claiming a key is `INSERT ... ON CONFLICT DO NOTHING` followed by a read, so exactly one
    of several concurrent duplicates inserts the row; taking over a running record whose lease
    expired, or resetting an expired one, is a conditional UPDATE that exactly one attempt
    wins. Each call is its own short transaction, never held across the handler.
    """

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        table: Table,
        *,
        ttl_s: float = 86_400.0,
        lease_s: float = 30.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if ttl_s <= 0 or lease_s <= 0:
            raise ValueError("ttl_s and lease_s must be positive")
        self._sessions = session_factory
        self._t = table
        self._ttl = timedelta(seconds=ttl_s)
        self._lease = timedelta(seconds=lease_s)
        self._clock = clock

    async def begin(self, caller: str, method: str, key: str, request_hash: str) -> Outcome:
        """Start the operation, resume an abandoned one, or return the stored outcome.

        Raises KeyReused (another request used this key), InProgress (it is running elsewhere
        and holds its lease) or InvalidKey.
        """
        validate_scope(caller, method, key)
        t = self._t
        pk = self._pk(caller, method, key)
        for _ in range(_MAX_ROUNDS):
            now = self._clock()
            token = uuid.uuid4().hex
            fresh = self._fresh_values(request_hash, token, now)
            async with self._sessions() as session, session.begin():
                insert = self._insert(session).values(
                    caller=caller, method=method, key=key, **fresh
                )
                claimed = await session.execute(insert.on_conflict_do_nothing())
                if _rowcount(claimed) == 1:
                    return Started(Record(caller, method, key, request_hash, token, self))
                row = (await session.execute(select(t).where(pk))).one_or_none()
                if row is None:
                    continue  # swept between our statements
                if self._is_expired(row.expires_at, row.state, row.locked_until, now):
                    # An expired key counts as absent: reset it, unless someone beat us to it.
                    reset = await session.execute(
                        update(t).where(pk, self._expired_clause(now)).values(**fresh)
                    )
                    if _rowcount(reset) == 1:
                        return Started(Record(caller, method, key, request_hash, token, self))
                    continue
                if row.request_hash != request_hash:
                    raise KeyReused(
                        f"idempotency key {key!r} was used for a different request to {method}"
                    )
                if row.state == DONE:
                    return Replay(
                        bytes(row.response or b""),
                        CODE_OK if row.status_code is None else int(row.status_code),
                        row.status_details or "",
                    )
                if row.locked_until is not None and row.locked_until > now:
                    raise InProgress(f"a request with idempotency key {key!r} is still in progress")
                takeover = await session.execute(
                    update(t)
                    .where(pk, t.c.state == RUNNING, t.c.lease_token == row.lease_token)
                    .values(lease_token=token, locked_until=now + self._lease)
                )
                if _rowcount(takeover) == 1:
                    log.info(
                        "resuming idempotent %s for %s from %s",
                        method,
                        caller,
                        row.recovery_point or "the start",
                    )
                    return Started(
                        Record(
                            caller,
                            method,
                            key,
                            request_hash,
                            token,
                            self,
                            recovery_point=row.recovery_point,
                            recovery_data=dict(row.recovery_data or {}),
                            resumed=True,
                        )
                    )
        raise InProgress(f"idempotency key {key!r} is contended; retry")

    async def checkpoint(
        self,
        record: Record,
        point: str,
        data: dict[str, Any],
        *,
        session: AsyncSession | None = None,
    ) -> None:
        """Persist a recovery point, in its own commit or in `session`'s; extends the lease."""
        values = {
            "recovery_point": point,
            "recovery_data": data,
            "locked_until": self._clock() + self._lease,
        }
        if session is None:
            if not await self._update_owned(record, **values):
                raise LeaseLost(f"lost the lease on idempotency key {record.key!r}")
            record.recovery_point = point
            record.recovery_data = data
            return
        result = await session.execute(update(self._t).where(*self._owned(record)).values(**values))
        if _rowcount(result) != 1:
            raise LeaseLost(f"lost the lease on idempotency key {record.key!r}")
        _on_commit(session, lambda: _set_point(record, point, data))

    async def renew(self, record: Record) -> None:
        if not await self._update_owned(record, locked_until=self._clock() + self._lease):
            raise LeaseLost(f"lost the lease on idempotency key {record.key!r}")

    async def finish(
        self, record: Record, response: bytes, code: int = CODE_OK, details: str = ""
    ) -> None:
        """Store the outcome (a response, or an error code and details) for replays."""
        if not await self._update_owned(
            record,
            state=DONE,
            response=response,
            status_code=code,
            status_details=details,
            locked_until=None,
        ):
            raise LeaseLost(f"lost the lease on idempotency key {record.key!r}")

    async def release(self, record: Record) -> bool:
        """Give the lease up now, keeping the recovery point, so a retry resumes at once."""
        return await self._update_owned(record, locked_until=self._clock())

    async def abandon(self, record: Record) -> bool:
        """Forget the key (nothing happened yet): a retry starts afresh, any request allowed."""
        async with self._sessions() as session, session.begin():
            result = await session.execute(delete(self._t).where(*self._owned(record)))
        return _rowcount(result) == 1

    async def sweep(self, now: datetime | None = None) -> int:
        """Delete expired records (never one whose running attempt still holds its lease)."""
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                delete(self._t).where(self._expired_clause(now or self._clock()))
            )
        return _rowcount(result)

    async def run_sweeper(self, interval_s: float = 300.0) -> None:
        """Sweep every `interval_s` until cancelled; a failed sweep is logged and retried."""
        while True:
            try:
                removed = await self.sweep()
                if removed:
                    log.info("swept %d expired idempotency keys", removed)
            except Exception:
                log.exception("idempotency sweep failed")
            await asyncio.sleep(interval_s)

    # -- helpers -------------------------------------------------------------------------

    def _fresh_values(self, request_hash: str, token: str, now: datetime) -> dict[str, Any]:
        return {
            "request_hash": request_hash,
            "state": RUNNING,
            "response": None,
            "status_code": None,
            "status_details": None,
            "recovery_point": None,
            "recovery_data": None,
            "lease_token": token,
            "locked_until": now + self._lease,
            "created_at": now,
            "expires_at": now + self._ttl,
        }

    def _insert(self, session: AsyncSession) -> Any:
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            return postgresql.insert(self._t)
        if dialect == "sqlite":
            return sqlite.insert(self._t)
        raise NotImplementedError(f"IdempotencyStore does not support {dialect}")

    def _pk(self, caller: str, method: str, key: str) -> ColumnElement[bool]:
        c = self._t.c
        return and_(c.caller == caller, c.method == method, c.key == key)

    def _owned(self, record: Record) -> tuple[ColumnElement[bool], ...]:
        c = self._t.c
        return (
            self._pk(record.caller, record.method, record.key),
            c.state == RUNNING,
            c.lease_token == record.lease_token,
        )

    async def _update_owned(self, record: Record, **values: Any) -> bool:
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(self._t).where(*self._owned(record)).values(**values)
            )
        return _rowcount(result) == 1

    def _expired_clause(self, now: datetime) -> ColumnElement[bool]:
        c = self._t.c
        return and_(
            c.expires_at <= now,
            or_(c.state == DONE, c.locked_until.is_(None), c.locked_until <= now),
        )

    @staticmethod
    def _is_expired(
        expires_at: datetime, state: str, locked_until: datetime | None, now: datetime
    ) -> bool:
        lease_free = state == DONE or locked_until is None or locked_until <= now
        return expires_at <= now and lease_free


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


def _set_point(record: Record, point: str, data: dict[str, Any]) -> None:
    record.recovery_point = point
    record.recovery_data = data


def _on_commit(session: AsyncSession, apply: Callable[[], None]) -> None:
    """Run `apply` once the session's current transaction commits; never if it rolls back."""
    settled = [False]

    def committed(_: Any) -> None:
        if not settled[0]:
            settled[0] = True
            apply()

    def rolled_back(_: Any) -> None:
        settled[0] = True

    sync = session.sync_session
    event.listen(sync, "after_commit", committed, once=True)
    event.listen(sync, "after_rollback", rolled_back, once=True)
