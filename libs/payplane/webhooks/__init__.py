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
"""

from __future__ import annotations

from ._app import MAX_DEPTH, Publish, create_webhook_app
from ._publisher import jetstream_publisher
from ._signature import SIGNATURE_HEADER, SignatureError, WebhookError, verify_signature

__all__ = [
    "MAX_DEPTH",
    "SIGNATURE_HEADER",
    "Publish",
    "SignatureError",
    "WebhookError",
    "create_webhook_app",
    "jetstream_publisher",
    "verify_signature",
]
