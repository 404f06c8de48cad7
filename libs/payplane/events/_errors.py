from __future__ import annotations

__all__ = ["EnvelopeError", "EventsError", "PublishError"]


class EventsError(Exception):
    """Base of every error raised by payplane.events."""


class PublishError(EventsError):
    """JetStream did not acknowledge a publish; the message may or may not be stored."""


class EnvelopeError(EventsError):
    """A message body is not a decodable Envelope."""
