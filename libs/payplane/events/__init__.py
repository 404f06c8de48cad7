"""Events between services: envelopes, transactional outbox, relay, consumers and inbox.

    EventsError              base of everything this package raises
    ├── PublishError         JetStream did not acknowledge a publish (timeout, no stream, API error)
    ├── EnvelopeError        a message body is not a decodable Envelope (dead-lettered, no retry)
    └── RetryableError       a handler's "not now" (a dependency is away): retried, no dead letter

Producer side: `Outbox(table).add(session, subject, envelope)` in the same transaction as the
state change; a `Relay` claims a batch (a lease on the rows), releases the connection,
publishes with `Nats-Msg-Id` = event id and marks rows sent only after the PubAck (a crash in
between re-publishes; JetStream's duplicate window drops it). An event that cannot be
published (over the max payload even deflated, or refused `max_attempts` times while
JetStream answers) is parked, never blocking the ones behind it; an outage keeps order and
backs off. `Outbox.count_parked/parked/unpark` are for alerts and operators.

Consumer side: `Consumer` is a durable pull consumer with explicit ack. Retryable failures
(`is_retryable`: Stripe, the database or NATS away) are held and retried with back-off for
as long as the outage lasts; other failures are redelivered with backoff and dead-lettered
after `max_deliver`. `dead_letter_counts`, `list_dead_letters` and `replay_dead_letters`
make dead letters visible and replayable; `EventsWatch` counts parked rows, dead letters and
held messages and logs at ERROR when they appear. `Inbox(table).claim(...)` in the handler's
transaction makes the effect exactly-once. `run_housekeeping` purges sent outbox rows (after a
day) and inbox ids (after 30 days, beyond any redelivery). W3C trace context rides in NATS
headers; the consumer span is a child of the producer's span.
"""

from __future__ import annotations

# `payplane.events.v1` (the generated protobuf) lives under gen/; let this package span both.
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

from payplane.events.v1.envelope_pb2 import Envelope

from ._consumer import Consumer, Handler, MessageMeta
from ._deadletters import (
    DLQ_STREAM_PREFIX,
    DeadLetter,
    ReplayResult,
    dead_letter_counts,
    list_dead_letters,
    replay_dead_letters,
)
from ._encoding import ENCODING_HEADER
from ._envelope import new_envelope, unpack_payload
from ._errors import EnvelopeError, EventsError, PublishError, RetryableError
from ._housekeeping import housekeep_once, run_housekeeping
from ._inbox import Inbox
from ._migrations import upgrade_outbox_table
from ._outbox import Outbox, ParkedEvent
from ._publish import MSG_ID_HEADER, publish_bytes, publish_envelope
from ._relay import Relay
from ._retry import RetryPolicy, is_retryable
from ._streams import ensure_consumer, ensure_stream
from ._tables import inbox_table, outbox_table
from ._watch import EventsReport, EventsWatch

__all__ = [
    "DLQ_STREAM_PREFIX",
    "ENCODING_HEADER",
    "MSG_ID_HEADER",
    "Consumer",
    "DeadLetter",
    "Envelope",
    "EnvelopeError",
    "EventsError",
    "EventsReport",
    "EventsWatch",
    "Handler",
    "Inbox",
    "MessageMeta",
    "Outbox",
    "ParkedEvent",
    "PublishError",
    "Relay",
    "ReplayResult",
    "RetryPolicy",
    "RetryableError",
    "dead_letter_counts",
    "ensure_consumer",
    "ensure_stream",
    "housekeep_once",
    "inbox_table",
    "is_retryable",
    "list_dead_letters",
    "new_envelope",
    "outbox_table",
    "publish_bytes",
    "publish_envelope",
    "replay_dead_letters",
    "run_housekeeping",
    "unpack_payload",
    "upgrade_outbox_table",
]
