"""The one way a payplane process connects to NATS.

    NatsConnError            base of everything this package raises
    └── NatsUnavailable      NATS did not become ready within the time asked (`wait_ready`)

Usage, in a service's composition root::

    conn = NatsConnection(settings.nats_url, name="checkout", on_connect=[declare_streams])
    await conn.start()                 # returns at once; connects in the background
    await conn.wait_ready(10)          # optional: give NATS a moment at start-up
    js = conn.jetstream                # usable at once; calls fail (callers retry) until up
    ...
    healthy = await conn.check()       # connected, hooks done, JetStream answering
    await conn.close()                 # drains when connected; never raises

What the client's defaults got wrong, and this fixes: the connection reconnects forever
(`max_reconnect_attempts=-1`) with exponential back-off and jitter between attempts (from
`NatsOptions.reconnect_wait_s` up to `max_reconnect_wait_s`), instead of giving up for good
after 60 attempts 2 s apart; NATS down at start-up is retried too (every
`max_reconnect_wait_s`), so a service starts and reports NOT_SERVING rather than crashing;
pings every `ping_interval_s` notice a dead peer within about `ping_interval_s *
(max_outstanding_pings + 1)`; disconnections, reconnections and errors are logged (errors
at most every 30 s); `on_connect` hooks (declaring streams and consumers) run after every
(re)connection, so a server that lost its store gets them back; and closing never raises,
whatever state the connection is in.
"""

from __future__ import annotations

from ._connection import ConnectHook, NatsConnection, NatsOptions, connect_nats
from ._errors import NatsConnError, NatsUnavailable

__all__ = [
    "ConnectHook",
    "NatsConnError",
    "NatsConnection",
    "NatsOptions",
    "NatsUnavailable",
    "connect_nats",
]
