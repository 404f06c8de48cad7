from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

__all__ = ["SIGNATURE_HEADER", "SignatureError", "WebhookError", "verify_signature"]

SIGNATURE_HEADER = "Stripe-Signature"


class WebhookError(Exception):
    """Base of every error raised by payplane.webhooks."""


class SignatureError(WebhookError):
    """The request is not provably from Stripe. The message is safe to log (no secrets)."""


def verify_signature(
    raw: bytes,
    header: str,
    secrets: Sequence[str],
    tolerance_s: float = 300,
    now: float | None = None,
) -> None:
    """Check `Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]` against the raw body.

    Only `v1` counts (`v0` and unknown schemes are ignored). Any v1 matching any secret is
    valid, which covers secret rolls. The HMAC-SHA256 is over `b"<t>." + raw`, compared in
    constant time. A timestamp older than `tolerance_s` is refused; like Stripe's own
    libraries, a timestamp ahead of our clock is not (a skewed or simulated sender clock).
    """
    timestamp, candidates = _parse(header)
    if not candidates:
        raise SignatureError("no v1 signature in Stripe-Signature")
    usable = [s for s in secrets if s]
    if not usable:
        raise SignatureError("no webhook secret configured")
    signed = str(timestamp).encode() + b"." + raw
    expected = [
        hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest().encode() for secret in usable
    ]
    # Every pair is compared: the time taken does not depend on which one matched.
    matched = False
    for candidate in candidates:
        for exp in expected:
            matched |= hmac.compare_digest(exp, candidate)
    if not matched:
        raise SignatureError("no v1 signature matches")
    current = time.time() if now is None else now
    if tolerance_s and timestamp < current - tolerance_s:
        raise SignatureError(f"timestamp older than {tolerance_s:g}s")


def _parse(header: str) -> tuple[int, list[bytes]]:
    timestamp: int | None = None
    v1: list[bytes] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise SignatureError("malformed Stripe-Signature")
        if key == "t":
            if timestamp is not None:
                raise SignatureError("malformed Stripe-Signature (several t)")
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("malformed Stripe-Signature timestamp") from None
        elif key == "v1":
            v1.append(value.strip().encode("utf-8", "replace"))
    if timestamp is None:
        raise SignatureError("no timestamp in Stripe-Signature")
    return timestamp, v1
