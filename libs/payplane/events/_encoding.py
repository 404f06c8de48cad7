from __future__ import annotations

import zlib
from collections.abc import Mapping

from ._errors import EnvelopeError

__all__ = [
    "DEFAULT_MAX_PAYLOAD",
    "ENCODING_HEADER",
    "fit_payload",
    "inflate_body",
    "message_size",
]

# NATS's default max_payload (1 MB); the server may announce another value in its INFO.
DEFAULT_MAX_PAYLOAD = 1024 * 1024
# Set on a message whose body was deflated by the relay to fit under max_payload.
ENCODING_HEADER = "Payplane-Encoding"
_DEFLATE = "deflate"
# A deflated body is inflated up to this size; more is refused as a decompression bomb.
MAX_INFLATED_BYTES = 64 * 1024 * 1024


def message_size(data: bytes, headers: Mapping[str, str]) -> int:
    """Bytes the server counts against max_payload: the header block plus the body."""
    if not headers:
        return len(data)
    block = len(b"NATS/1.0\r\n\r\n")
    for key, value in headers.items():
        block += len(key.encode()) + len(value.encode()) + 4  # "k: v\r\n"
    return block + len(data)


def fit_payload(
    data: bytes, headers: Mapping[str, str], max_payload: int
) -> tuple[bytes, dict[str, str]] | None:
    """`(data, headers)` as they fit under `max_payload`: unchanged when they already do,
    deflated (with ENCODING_HEADER) when that is enough, None when nothing makes them fit."""
    out = dict(headers)
    if message_size(data, out) <= max_payload:
        return data, out
    out[ENCODING_HEADER] = _DEFLATE
    packed = zlib.compress(data, 6)
    if message_size(packed, out) <= max_payload:
        return packed, out
    return None


def inflate_body(data: bytes, headers: Mapping[str, str]) -> bytes:
    """The body as it was before `fit_payload`; EnvelopeError on an unknown or bad encoding."""
    encoding = headers.get(ENCODING_HEADER)
    if encoding is None:
        return data
    if encoding != _DEFLATE:
        raise EnvelopeError(f"unknown {ENCODING_HEADER} {encoding[:40]!r}")
    inflater = zlib.decompressobj()
    try:
        body = inflater.decompress(data, MAX_INFLATED_BYTES)
    except zlib.error as exc:
        raise EnvelopeError("deflated body does not inflate") from exc
    if inflater.unconsumed_tail or not inflater.eof:
        raise EnvelopeError(f"deflated body inflates beyond {MAX_INFLATED_BYTES} bytes")
    return body
