"""In-memory fakes for unit tests of code that emits or handles events (no NATS, no DB)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from payplane.events.v1.envelope_pb2 import Envelope

from ._consumer import Handler, MessageMeta
from ._publish import MSG_ID_HEADER

__all__ = ["FakeOutbox", "FakePublisher", "Published", "deliver", "eventually"]


@dataclass(frozen=True)
class Published:
    subject: str
    envelope: Envelope
    headers: Mapping[str, str]


@dataclass
class FakePublisher:
    """Records publishes; drops a repeated msg id like JetStream's duplicate window does.

    Set `fail_with` to make the next publishes raise (e.g. PublishError).
    """

    published: list[Published] = field(default_factory=list)
    fail_with: Exception | None = None
    _seen: set[str] = field(default_factory=set)

    async def publish_envelope(
        self,
        subject: str,
        envelope: Envelope,
        msg_id: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> bool:
        """Returns False for a dropped duplicate."""
        if self.fail_with is not None:
            raise self.fail_with
        key = msg_id or envelope.event_id
        if key in self._seen:
            return False
        self._seen.add(key)
        hdrs = dict(headers or {})
        hdrs[MSG_ID_HEADER] = key
        self.published.append(Published(subject, envelope, hdrs))
        return True

    def of_type(self, event_type: str) -> list[Envelope]:
        return [p.envelope for p in self.published if p.envelope.type == event_type]


@dataclass
class FakeOutbox:
    """Stands in for `Outbox`: same `add` signature, keeps (subject, envelope) pairs.

    The session argument is ignored, so the fake cannot tell whether the caller committed;
    tests of the commit itself belong with a real database.
    """

    added: list[tuple[str, Envelope]] = field(default_factory=list)

    async def add(self, session: object, subject: str, envelope: Envelope) -> None:
        if not envelope.event_id:
            raise ValueError("envelope.event_id is required (it is the dedupe key)")
        self.added.append((subject, envelope))

    @property
    def envelopes(self) -> list[Envelope]:
        return [env for _, env in self.added]


async def deliver(
    handler: Handler,
    envelope: Envelope,
    *,
    subject: str = "test.subject",
    num_delivered: int = 1,
    stream: str = "TEST",
    consumer: str = "test",
) -> None:
    """Call a consumer handler the way `Consumer` does, without NATS."""
    meta = MessageMeta(
        subject=subject,
        stream=stream,
        consumer=consumer,
        stream_seq=1,
        num_delivered=num_delivered,
        msg_id=envelope.event_id,
        headers={MSG_ID_HEADER: envelope.event_id},
    )
    await handler(envelope, meta)


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout_s: float = 15.0, interval_s: float = 0.05
) -> None:
    """Poll `check` until it is true; TimeoutError after `timeout_s` (a bound, not a claim)."""
    async with asyncio.timeout(timeout_s):
        while True:
            if await check():
                return
            await asyncio.sleep(interval_s)
