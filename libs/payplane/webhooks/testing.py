"""Helpers for tests of webhook handling: Stripe-style signing and a recording publisher."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RecordingPublish", "event_body", "sign_header"]


def sign_header(
    raw: bytes,
    secret: str,
    timestamp: int | None = None,
    *,
    extra_v1: Iterable[str] = (),
    v0: str | None = None,
) -> str:
    """A `Stripe-Signature` value as Stripe builds it, optionally with decoys."""
    t = int(time.time()) if timestamp is None else timestamp
    sig = hmac.new(secret.encode(), f"{t}.".encode() + raw, hashlib.sha256).hexdigest()
    parts = [f"t={t}", *(f"v1={s}" for s in extra_v1), f"v1={sig}"]
    if v0 is not None:
        parts.append(f"v0={v0}")
    return ",".join(parts)


def event_body(event_id: str, event_type: str, **data: Any) -> bytes:
    """A minimal Stripe event JSON body."""
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "livemode": False,
            "data": {"object": data},
        }
    ).encode()


@dataclass
class RecordingPublish:
    """A `publish` callable that records (event_id, event_type, raw); `fail_with` to fail."""

    calls: list[tuple[str, str, bytes]] = field(default_factory=list)
    fail_with: Exception | None = None

    async def __call__(self, event_id: str, event_type: str, raw: bytes) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.calls.append((event_id, event_type, raw))
