"""Checks for request fields at a servicer's edge: ids, bounded text, times in range.

Each check raises `errors.InvalidArgument` naming the field and the rule, and never repeats
the value sent (an id of 100 KB, a card number pasted into the wrong field). A well-formed id
that names nothing is the handler's NOT_FOUND; a malformed one never reaches a query.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from .errors import InvalidArgument

__all__ = [
    "EARLIEST",
    "LATEST",
    "MAX_ID",
    "object_id",
    "optional_time",
    "text",
    "timestamp",
]

MAX_ID = 64
_ID = re.compile(rf"[A-Za-z0-9_]{{1,{MAX_ID}}}")
# Times payplane accepts: from the Unix epoch to the end of protobuf's Timestamp range
# (9999-12-31T23:59:59Z); every datetime and database column holds these.
EARLIEST = 0
LATEST = 253_402_300_799


def object_id(value: str, field: str, *, required: bool = True) -> str:
    """An object id (pay_..., je_...): letters, digits and underscores, at most MAX_ID."""
    if not value:
        if required:
            raise InvalidArgument(f"{field}: required")
        return value
    if not _ID.fullmatch(value):
        raise InvalidArgument(
            f"{field}: not an id (letters, digits and '_', at most {MAX_ID} characters)"
        )
    return value


def text(value: str, field: str, max_len: int, *, required: bool = False) -> str:
    """Free text up to `max_len` characters, without NUL (PostgreSQL cannot store it)."""
    if not value:
        if required:
            raise InvalidArgument(f"{field}: required")
        return value
    if len(value) > max_len:
        raise InvalidArgument(f"{field}: at most {max_len} characters")
    if "\x00" in value:
        raise InvalidArgument(f"{field}: must not contain NUL characters")
    return value


def timestamp(ts: Timestamp, field: str) -> datetime:
    """`ts` as an aware datetime, if it lies between EARLIEST and LATEST."""
    if not EARLIEST <= ts.seconds <= LATEST or not 0 <= ts.nanos < 1_000_000_000:
        raise InvalidArgument(
            f"{field}: out of range (from 1970-01-01 to 9999-12-31, nanos 0 to 999999999)"
        )
    return ts.ToDatetime(tzinfo=UTC)


def optional_time(request: Message, field: str, name: str | None = None) -> datetime | None:
    """The Timestamp field `field` of `request` as a datetime, or None when it is unset."""
    if not request.HasField(field):
        return None
    value = getattr(request, field)
    assert isinstance(value, Timestamp)
    return timestamp(value, name or field)
