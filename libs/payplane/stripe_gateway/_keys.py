from __future__ import annotations

import hashlib
import uuid

__all__ = ["MAX_KEY_LENGTH", "deterministic_key", "new_key", "validate_key"]

MAX_KEY_LENGTH = 255  # Stripe's limit
_PREFIX = "pp1-"  # versioned: a change of derivation must not collide with old keys


def deterministic_key(*parts: str) -> str:
    """A Stripe idempotency key derived from our own identifiers (68 characters).

    Same parts, same key, across processes and restarts: a retried use case reaches the
    same Stripe request. Parts are length-prefixed so ("ab", "c") and ("a", "bc") differ.
    """
    if not parts:
        raise ValueError("deterministic_key needs at least one part")
    digest = hashlib.sha256()
    for part in parts:
        if not isinstance(part, str):
            raise TypeError(f"key parts must be str, got {type(part).__name__}")
        raw = part.encode("utf-8")
        digest.update(len(raw).to_bytes(8, "big"))
        digest.update(raw)
    return _PREFIX + digest.hexdigest()


def new_key() -> str:
    """A fresh key for a call whose caller gave none: one per call, never per attempt."""
    return "pp1-gw-" + uuid.uuid4().hex


def validate_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"an idempotency key must have 1 to {MAX_KEY_LENGTH} characters")
    return key
