"""Events between services: envelopes, transactional outbox, relay, consumers and inbox.

    EventsError              base of everything this package raises
    ├── PublishError         JetStream did not acknowledge a publish (timeout, no stream, API error)
    └── EnvelopeError        a message body is not a decodable Envelope (dead-lettered, no retry)

Producer side: `Outbox(table).add(session, subject, envelope)` in the same transaction as the
state change; a `Relay` publishes unsent rows with `Nats-Msg-Id` = event id and marks them sent
only after the PubAck (a crash in between re-publishes; JetStream's duplicate window drops it).
Consumer side: `Consumer` is a durable pull consumer with explicit ack, bounded redelivery with
backoff and a dead-letter subject; `Inbox(table).claim(...)` in the handler's transaction makes
the effect exactly-once. `run_housekeeping` purges sent outbox rows (after a day) and inbox
ids (after 30 days, beyond any redelivery). W3C trace context rides in NATS headers; the
consumer span is a child of the producer's span.
"""

from __future__ import annotations

# `payplane.events.v1` (the generated protobuf) lives under gen/; let this package span both.
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

from payplane.events.v1.envelope_pb2 import Envelope

from ._consumer import Consumer, Handler, MessageMeta
from ._envelope import new_envelope, unpack_payload
from ._errors import EnvelopeError, EventsError, PublishError
from ._housekeeping import housekeep_once, run_housekeeping
from ._inbox import Inbox
from ._outbox import Outbox
from ._publish import MSG_ID_HEADER, publish_bytes, publish_envelope
from ._relay import Relay
from ._streams import ensure_consumer, ensure_stream
from ._tables import inbox_table, outbox_table

__all__ = [
    "MSG_ID_HEADER",
    "Consumer",
    "Envelope",
    "EnvelopeError",
    "EventsError",
    "Handler",
    "Inbox",
    "MessageMeta",
    "Outbox",
    "PublishError",
    "Relay",
    "ensure_consumer",
    "ensure_stream",
    "housekeep_once",
    "inbox_table",
    "new_envelope",
    "outbox_table",
    "publish_bytes",
    "publish_envelope",
    "run_housekeeping",
    "unpack_payload",
]
