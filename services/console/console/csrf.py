"""CSRF protection for every state-changing request.

Each session (anonymous ones too) holds a random token; every form carries it in a hidden
`csrf_token` field and a POST is accepted only when the two match (constant time). The
session cookie is SameSite=Strict as well, and a request whose Origin header names another
site is refused outright: three independent checks, any one of which stops a forged form.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

__all__ = ["FIELD", "SAFE_METHODS", "origin_allowed", "token_matches"]

FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def token_matches(expected: str, submitted: str | None) -> bool:
    if not expected or not submitted:
        return False
    return hmac.compare_digest(expected.encode(), submitted.encode())


def origin_allowed(origin: str | None, host: str) -> bool:
    """No Origin header (old browsers, same-origin GETs) passes to the token check; an
    Origin must name this host; the opaque "null" origin never passes."""
    if origin is None:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc == host
