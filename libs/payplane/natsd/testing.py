"""pytest fixtures: one JetStream-enabled nats-server per test session, on a free port.

Use from a conftest.py::

    from payplane.natsd.testing import nats_client, nats_server, nats_url  # noqa: F401

Several conftest files may import these; the server is still started once per session (it is
kept in the pytest config stash). Tests must never touch a NATS on the default port 4222.
Tests that kill a server start their own with `start_nats_server()`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client

from ._server import NatsServer

__all__ = ["nats_client", "nats_server", "nats_url", "session_nats_server"]

_SERVER_KEY = pytest.StashKey[NatsServer]()


def session_nats_server(config: pytest.Config) -> NatsServer:
    """The session's server, started on first use and stopped when pytest ends."""
    server = config.stash.get(_SERVER_KEY, None)
    if server is None:
        server = NatsServer()
        config.stash[_SERVER_KEY] = server
        config.add_cleanup(server.stop_sync)
    if not server.running:
        server.start_sync()
    return server


@pytest.fixture(scope="session")
def nats_server(request: pytest.FixtureRequest) -> NatsServer:
    return session_nats_server(request.config)


@pytest.fixture(scope="session")
def nats_url(nats_server: NatsServer) -> str:
    return nats_server.url


@pytest.fixture
async def nats_client(nats_server: NatsServer) -> AsyncIterator[Client]:
    """A connection to the session server, closed after the test."""
    nc = await nats.connect(nats_server.url, connect_timeout=5, max_reconnect_attempts=2)
    try:
        yield nc
    finally:
        await nc.close()
