from __future__ import annotations

__all__ = ["IdempotencyError", "InProgress", "InvalidKey", "KeyReused", "LeaseLost"]


class IdempotencyError(Exception):
    """Base of payplane.idempotency errors."""


class InvalidKey(IdempotencyError):
    """The idempotency key (or its scope) is empty or too long."""


class KeyReused(IdempotencyError):
    """The key was already used for a different request by the same caller and method."""


class InProgress(IdempotencyError):
    """A request with this key is running and holds its lease; retry later."""


class LeaseLost(IdempotencyError):
    """This attempt's lease expired and another attempt took the operation over."""
