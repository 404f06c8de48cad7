from __future__ import annotations

__all__ = ["NatsConnError", "NatsUnavailable"]


class NatsConnError(Exception):
    """Base of every error raised by payplane.natsconn."""


class NatsUnavailable(NatsConnError):
    """NATS did not become ready within the time asked."""
