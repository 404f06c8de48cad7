"""Signed session cookies: who is signed in, their CSRF token, and when the session ends.

A cookie is `<payload>.<signature>`: the payload is url-safe base64 of compact JSON, the
signature HMAC-SHA256 under a key derived from CONSOLE_SESSION_SECRET. Nothing is kept on the
server, so any replica accepts any session. A session ends at `max_age_s` after sign-in, after
`idle_s` without a request, at sign-out (the cookie is removed), when the secret changes, and
when the user's password or role changes (the cookie carries a fingerprint of the password
hash; the role is read from configuration on every request, never from the cookie).

Before sign-in a visitor gets an anonymous session holding only a CSRF token, so that the
sign-in form is protected like every other form.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

__all__ = ["Session", "SessionCodec", "new_csrf_token"]


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Session:
    user: str  # "" before sign-in
    csrf: str
    issued_at: float
    seen_at: float
    fingerprint: str = ""  # the user's password fingerprint at sign-in
    flash: str = ""  # one message for the next page ("ok:..." or "error:...")

    @property
    def signed_in(self) -> bool:
        return bool(self.user)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    def __init__(
        self,
        secret: str,
        *,
        max_age_s: float,
        idle_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(secret) < 32:
            raise ValueError("the session secret must be at least 32 characters")
        self._key = hmac.new(secret.encode(), b"payplane-console-session-v1", "sha256").digest()
        self.max_age_s = max_age_s
        self.idle_s = idle_s
        self.clock = clock

    @property
    def key(self) -> bytes:
        """A key derived from the secret, for other fingerprints (never the secret itself)."""
        return self._key

    def anonymous(self) -> Session:
        now = self.clock()
        return Session(user="", csrf=new_csrf_token(), issued_at=now, seen_at=now)

    def signed_in(self, user: str, fingerprint: str) -> Session:
        """A fresh session (and CSRF token) at sign-in: nothing carries over from before."""
        now = self.clock()
        return Session(user, new_csrf_token(), now, now, fingerprint)

    def touched(self, session: Session) -> Session:
        return replace(session, seen_at=self.clock())

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def encode(self, s: Session) -> str:
        body = [s.user, s.csrf, round(s.issued_at, 3), round(s.seen_at, 3), s.fingerprint, s.flash]
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}"

    def decode(self, value: str) -> Session | None:
        """The session in a cookie value; None when forged, malformed or over."""
        payload, sep, signature = value.partition(".")
        if not sep or not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            return None
        try:
            user, csrf, issued, seen, fingerprint, flash = json.loads(_unb64(payload))
            session = Session(
                str(user), str(csrf), float(issued), float(seen), str(fingerprint), str(flash)
            )
        except (ValueError, TypeError):
            return None
        now = self.clock()
        if now - session.issued_at > self.max_age_s or now < session.issued_at - 60:
            return None
        if session.signed_in and now - session.seen_at > self.idle_s:
            return None
        return session
