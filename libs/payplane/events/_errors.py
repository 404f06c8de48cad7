from __future__ import annotations

__all__ = ["EnvelopeError", "EventsError", "PublishError", "RetryableError"]


class EventsError(Exception):
    """Base of every error raised by payplane.events."""


class PublishError(EventsError):
    """JetStream did not acknowledge a publish; the message may or may not be stored."""


class EnvelopeError(EventsError):
    """A message body is not a decodable Envelope."""


class RetryableError(EventsError):
    """Raised by a handler whose failure will pass (a dependency is down, not the message
    wrong): the Consumer backs off and retries it without counting toward dead-lettering."""
