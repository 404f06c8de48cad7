"""Stripe webhook ingress: verify the raw body, publish to JetStream, then answer 2xx.

    WebhookError             base of everything this package raises
    └── SignatureError       Stripe-Signature missing, malformed, not matching, or too old

`create_webhook_app(secrets, publish)` answers 400 (nothing published) on a bad signature or
a body that is not shaped like a Stripe event (even validly signed: nested past MAX_DEPTH,
`data.object` not an object, ...; the reason is logged, the body never), 413 over the size
limit, 503 when publishing fails (Stripe retries), and 200 only after `publish` returned.
`jetstream_publisher(js, prefix)` is the usual `publish`: subject `<prefix>.<event type>`,
`Nats-Msg-Id` = the Stripe event id, so repeated deliveries of one event are stored once.
Bodies and secrets are never logged.

Backfill, for events whose webhooks never got through (the endpoint down beyond Stripe's
retries): `backfill_events(gateway, publish, types, since=..., until=...)` lists
`GET /v1/events` for a window and publishes each event the way the ingress does (the same
`publish`), so JetStream and the consumer's inbox drop what was already received; an
operator calls it for a date range. `WebhookBackfill(...).run()` does it periodically for
the events some endpoint has not acknowledged, from a cursor shared by the replicas
(`KeyValueCursor`, a NATS key-value entry).
"""

from __future__ import annotations

from ._app import MAX_DEPTH, Publish, create_webhook_app
from ._backfill import (
    BackfillCursor,
    BackfillResult,
    KeyValueCursor,
    WebhookBackfill,
    backfill_events,
)
from ._publisher import jetstream_publisher
from ._signature import SIGNATURE_HEADER, SignatureError, WebhookError, verify_signature

__all__ = [
    "MAX_DEPTH",
    "SIGNATURE_HEADER",
    "BackfillCursor",
    "BackfillResult",
    "KeyValueCursor",
    "Publish",
    "SignatureError",
    "WebhookBackfill",
    "WebhookError",
    "backfill_events",
    "create_webhook_app",
    "jetstream_publisher",
    "verify_signature",
]
