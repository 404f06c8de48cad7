from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from sqlalchemy import Row, Table, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ._encoding import DEFAULT_MAX_PAYLOAD, fit_payload, message_size
from ._errors import PublishError
from ._publish import publish_bytes

__all__ = ["Relay"]

log = logging.getLogger("payplane.events.relay")

# Refused by the client or the server whatever the state of the connection: retrying the
# same row cannot succeed, so it is parked at once.
_PERMANENT = (nats.errors.MaxPayloadError, nats.errors.BadSubjectError)


# id, event_id, subject, envelope, headers, attempts
_OutboxRow = Row[Any, Any, Any, Any, Any, Any]


@dataclass
class _Batch:
    token: str
    rows: Sequence[_OutboxRow]
    claimed_at: float  # monotonic


@dataclass
class _Outcome:
    acked: list[int] = field(default_factory=list)
    parked: list[tuple[int, str, int]] = field(default_factory=list)  # id, error, attempts
    failed: tuple[int, str, int] | None = None  # a row JetStream refused, not yet parked
    failure: PublishError | None = None


class Relay:
    """Publishes unsent outbox rows to JetStream in id order; marks them sent after the ack.

    One pass (`run_once`): claim a batch in a short transaction (a claim token and a lease
    end on each row), release the connection, publish, then settle in another short
    transaction (mark sent, park, record failures, release what is left). Nothing holds a
    database connection while NATS is slow, so SQLite's single connection stays free.

    Several relays (replicas) share an outbox through the claims: a row claimed under a live
    lease is not taken by another relay, on SQLite and PostgreSQL alike (PostgreSQL also
    skips rows another relay is claiming right now, `FOR UPDATE SKIP LOCKED`). A relay that
    dies holding claims delays those rows by at most `lease_s`; a relay stops publishing a
    batch at half its lease, so a live one never loses its claims. If a lease does run out
    (NATS stalled longer than that), two relays may publish the same row: `Nats-Msg-Id` = event
    id makes JetStream store it once. Order holds per relay, not globally (consumers must be
    order-tolerant anyway).

    A crash between the PubAck and the mark re-publishes on restart; the stream's duplicate
    window drops the copy. An interrupted pass (cancelled, or the process going down) frees
    its claims and marks nothing, exactly like a crash without the wait.

    Failures:
    - an outage (NATS down, JetStream not answering) keeps order: the rows stay unsent, in
      order, and the loop backs off (doubling up to `max_backoff_s`); nothing is counted;
    - an event that can never be published (over NATS's max payload even deflated, a bad
      subject) is parked at once;
    - a row JetStream refuses while it answers for that subject (no stream captures it, the
      stream refuses the message) counts one attempt and holds the line; after
      `max_attempts` it is parked.
    Parked rows keep their error, are logged at ERROR and counted by `Outbox.count_parked`;
    `Outbox.unpark` puts them back in line.

    An envelope over the server's max payload is deflated (header `Payplane-Encoding:
    deflate`; `Consumer` inflates it) when that makes it fit.
    """

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        table: Table,
        js: JetStreamContext,
        batch_size: int = 100,
        poll_interval: float = 0.2,
        *,
        max_backoff_s: float = 5.0,
        max_attempts: int = 10,
        lease_s: float = 15.0,
        publish_timeout_s: float = 5.0,
    ) -> None:
        if max_attempts < 1 or lease_s <= 0 or publish_timeout_s <= 0:
            raise ValueError("need max_attempts >= 1, lease_s > 0 and publish_timeout_s > 0")
        self._session_factory = session_factory
        self._table = table
        self._js = js
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._max_backoff_s = max_backoff_s
        self._max_attempts = max_attempts
        self._lease_s = lease_s
        self._publish_timeout_s = publish_timeout_s
        self._stopping = asyncio.Event()

    async def run_once(self) -> int:
        """Publish one batch; returns how many rows were acknowledged and marked sent.

        Raises PublishError (after settling the batch) when a publish failed for a reason
        other than the row itself being unpublishable.
        """
        batch = await self._claim()
        if batch is None:
            return 0
        outcome = _Outcome()
        try:
            await self._publish(batch, outcome)
        except BaseException:
            await self._release_quietly(batch.token)
            raise
        await self._settle(batch.token, outcome)
        if outcome.failure is not None:
            raise outcome.failure
        return len(outcome.acked)

    async def run(self) -> None:
        """Loop until `stop()`: drain full batches back to back, poll when idle, back off
        (bounded, doubling) while JetStream or the database is failing."""
        self._stopping.clear()
        backoff = self._poll_interval
        while not self._stopping.is_set():
            try:
                sent = await self.run_once()
            except Exception as exc:  # a relay must outlive NATS and DB outages
                log.warning("outbox relay batch failed: %r; retrying in %.1fs", exc, backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff_s)
                continue
            backoff = self._poll_interval
            if sent < self._batch_size:
                await self._sleep(self._poll_interval)

    def stop(self) -> None:
        self._stopping.set()

    # -- the three steps ----------------------------------------------------------------------

    def _free(self, now: datetime) -> Any:
        t = self._table
        return (
            t.c.sent_at.is_(None),
            t.c.parked_at.is_(None),
            or_(t.c.claimed_until.is_(None), t.c.claimed_until < now),
        )

    async def _claim(self) -> _Batch | None:
        t = self._table
        token = str(uuid.uuid4())
        now = datetime.now(UTC)
        async with self._session_factory() as session, session.begin():
            candidates = select(t.c.id).where(*self._free(now)).order_by(t.c.id)
            candidates = candidates.limit(self._batch_size)
            if session.get_bind().dialect.name == "postgresql":
                candidates = candidates.with_for_update(skip_locked=True)
            ids = list((await session.execute(candidates)).scalars())
            if not ids:
                return None
            # Re-checked in the UPDATE: on SQLite another process may have claimed meanwhile.
            await session.execute(
                update(t)
                .where(t.c.id.in_(ids), *self._free(now))
                .values(claim_token=token, claimed_until=now + timedelta(seconds=self._lease_s))
            )
            rows = (
                await session.execute(
                    select(
                        t.c.id,
                        t.c.event_id,
                        t.c.subject,
                        t.c.envelope,
                        t.c.headers,
                        t.c.attempts,
                    )
                    .where(t.c.claim_token == token)
                    .order_by(t.c.id)
                )
            ).all()
        return _Batch(token, rows, time.monotonic()) if rows else None

    async def _publish(self, batch: _Batch, outcome: _Outcome) -> None:
        max_payload = _max_payload(self._js)
        for row in batch.rows:
            if time.monotonic() - batch.claimed_at > self._lease_s / 2:
                break  # the rest go back to the line before the lease could run out
            fitted = fit_payload(row.envelope, _str_headers(row.headers), max_payload)
            if fitted is None:
                size = message_size(row.envelope, _str_headers(row.headers))
                self._park(row, f"envelope of {size} bytes exceeds the NATS max payload of "
                           f"{max_payload} bytes, even deflated", outcome)  # fmt: skip
                continue
            data, headers = fitted
            try:
                await publish_bytes(
                    self._js,
                    row.subject,
                    data,
                    msg_id=row.event_id,
                    headers=headers,
                    timeout_s=self._publish_timeout_s,
                )
            except PublishError as exc:
                error = _describe(exc.__cause__ or exc)
                if isinstance(exc.__cause__, _PERMANENT):
                    self._park(row, error, outcome)
                    continue
                if not await self._refused_for_this_row(exc.__cause__, row.subject):
                    outcome.failure = exc  # an outage: keep order, back off, count nothing
                    return
                attempts = int(row.attempts or 0) + 1
                if attempts >= self._max_attempts:
                    self._park(row, error, outcome, attempts)
                    continue
                log.warning(
                    "outbox event %s to %s refused (attempt %d/%d): %s",
                    row.event_id, row.subject, attempts, self._max_attempts, error,
                )  # fmt: skip
                outcome.failed = (row.id, error, attempts)
                outcome.failure = exc  # hold the line behind it until it is parked
                return
            outcome.acked.append(row.id)

    def _park(self, row: _OutboxRow, error: str, outcome: _Outcome, attempts: int = 0) -> None:
        log.error(
            "outbox event %s to %s parked (set aside, not published): %s",
            row.event_id, row.subject, error,
        )  # fmt: skip
        outcome.parked.append((row.id, error, max(attempts, int(row.attempts or 0))))

    async def _refused_for_this_row(self, cause: BaseException | None, subject: str) -> bool:
        """Whether a failed publish counts against the row: JetStream answered it with an
        error, or said no stream captures it while answering for that subject right now. A
        timeout or a lost connection is an outage (and may even have stored the message)."""
        if isinstance(cause, nats.js.errors.ServiceUnavailableError | nats.js.errors.ServerError):
            return False
        if isinstance(cause, nats.js.errors.APIError):
            return True  # JetStream looked at this message and refused it
        if not isinstance(
            cause, nats.errors.NoRespondersError | nats.js.errors.NoStreamResponseError
        ):
            return False
        try:
            async with asyncio.timeout(self._publish_timeout_s):
                await self._js.find_stream_name_by_subject(subject)
        except nats.js.errors.NotFoundError:
            return True  # JetStream answered: no stream captures this subject
        except Exception:
            return False
        return True

    async def _settle(self, token: str, outcome: _Outcome) -> None:
        t = self._table
        now = datetime.now(UTC)
        unclaimed = {"claim_token": None, "claimed_until": None}
        async with self._session_factory() as session, session.begin():
            if outcome.acked:
                await session.execute(
                    update(t).where(t.c.id.in_(outcome.acked)).values(sent_at=now, **unclaimed)
                )
            for row_id, error, attempts in outcome.parked:
                await session.execute(
                    update(t)
                    .where(t.c.id == row_id, t.c.sent_at.is_(None))
                    .values(parked_at=now, last_error=error[:512], attempts=attempts, **unclaimed)
                )
            if outcome.failed is not None:
                row_id, error, attempts = outcome.failed
                await session.execute(
                    update(t).where(t.c.id == row_id).values(attempts=attempts, last_error=error)
                )
            await session.execute(update(t).where(t.c.claim_token == token).values(**unclaimed))

    async def _release_quietly(self, token: str) -> None:
        t = self._table
        try:
            async with self._session_factory() as session, session.begin():
                await session.execute(
                    update(t)
                    .where(t.c.claim_token == token)
                    .values(claim_token=None, claimed_until=None)
                )
        except Exception as exc:  # the lease runs out on its own
            log.warning("could not release outbox claims (they expire): %r", exc)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)


def _max_payload(js: JetStreamContext) -> int:
    # The server announces its limit when the client connects; before that, NATS's default.
    client = getattr(js, "_nc", None)
    value = getattr(client, "max_payload", None)
    return value if isinstance(value, int) and value > 0 else DEFAULT_MAX_PAYLOAD


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:512]


def _str_headers(raw: object) -> dict[str, str]:
    if not isinstance(raw, dict):
        return {}
    return {str(k): str(v) for k, v in raw.items()}
