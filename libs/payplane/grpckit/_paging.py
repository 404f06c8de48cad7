"""Page tokens: opaque to callers, tamper-evident, bound to the query that issued them.

A list handler keeps its own cursor format (a sequence number, a `created|id` pair...) and
seals it on the way out; on the way in, only a token this service sealed, for this query,
opens. A forged, edited or foreign token is INVALID_ARGUMENT before any of it is parsed, so
the cursor parsers behind never see a value they did not write (no float or integer overflow
from a crafted token), and a client cannot carry state the server trusts (a running balance)
through a token it can edit.

Format: base64url(version byte || 16-byte HMAC-SHA256 tag || cursor), unpadded. The tag
covers the scope (method and filters) and the cursor. Keys are shared by every replica of a
service (see GrpcServiceSettings.page_token_key), so any replica opens any replica's tokens.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from .errors import InvalidArgument

__all__ = ["MAX_PAGE_TOKEN", "PageTokens"]

MAX_PAGE_TOKEN = 1_024  # characters: far above any cursor a service writes
_VERSION = b"\x01"
_TAG = 16


class PageTokens:
    """Seal cursors into page tokens and open them again (one instance per service)."""

    def __init__(self, key: bytes, *, field: str = "page.page_token") -> None:
        if len(key) < 16:
            raise ValueError("a page token key needs at least 16 bytes")
        self._key = key
        self._field = field

    @staticmethod
    def scope(method: str, *filters: object) -> str:
        """The query a token belongs to: the method and every filter that shapes the list."""
        return "\x1f".join([method, *(repr(f) for f in filters)])

    def seal(self, scope: str, cursor: str) -> str:
        """The token for `cursor` in `scope`; empty for an empty cursor (no next page)."""
        if not cursor:
            return ""
        body = cursor.encode()
        token = base64.urlsafe_b64encode(_VERSION + self._tag(scope, body) + body)
        return token.rstrip(b"=").decode()

    def open(self, scope: str, token: str) -> str:
        """The cursor sealed in `token`, or InvalidArgument; empty for an empty token."""
        if not token:
            return ""
        refused = InvalidArgument(
            f"{self._field}: not a token this service issued for this query "
            "(send the next_page_token of the previous page, with the same filters)"
        )
        if len(token) > MAX_PAGE_TOKEN:
            raise refused
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise refused from None
        version, tag, body = raw[:1], raw[1 : 1 + _TAG], raw[1 + _TAG :]
        if version != _VERSION or not body:
            raise refused
        if not hmac.compare_digest(tag, self._tag(scope, body)):
            raise refused
        try:
            return body.decode()
        except UnicodeDecodeError:
            raise refused from None

    def _tag(self, scope: str, body: bytes) -> bytes:
        mac = hmac.new(self._key, scope.encode("utf-8", "surrogatepass"), hashlib.sha256)
        mac.update(b"\x00")
        mac.update(body)
        return mac.digest()[:_TAG]
