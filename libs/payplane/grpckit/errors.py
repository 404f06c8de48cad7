"""Domain errors a handler raises, and the one table that maps them to gRPC status codes.

    DomainError                 base: the message goes to the caller as the status details
    ├── InvalidArgument         INVALID_ARGUMENT     the request itself is wrong
    ├── NotFound                NOT_FOUND
    ├── AlreadyExists           ALREADY_EXISTS
    ├── FailedPrecondition      FAILED_PRECONDITION  the system is not in a state to do it
    ├── PermissionDenied        PERMISSION_DENIED
    ├── Aborted                 ABORTED              concurrency conflict; retry the sequence
    ├── ResourceExhausted       RESOURCE_EXHAUSTED   quota or rate limit
    ├── Unavailable             UNAVAILABLE          transient; retry with backoff
    └── DeadlineExceeded        DEADLINE_EXCEEDED

The idempotency errors are in the same table (KeyReused and InvalidKey: INVALID_ARGUMENT;
InProgress and LeaseLost: ABORTED). Any other exception is INTERNAL: the caller gets an error
id, the log gets the traceback under that id. Never set a code and return an empty reply:
raise one of these instead.

Messages often name what the caller sent ("payment pay_... not found"). Every status leaving a
payplane server has its details cut to MAX_DETAILS characters (`bounded`), once, where the
status is built: a 100 KB id echoed back would otherwise exceed gRPC's metadata limit and
reach the caller as RESOURCE_EXHAUSTED, and no caller should get its megabyte back.
`shown(value)` is for handlers that want one value short inside a longer message.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc

from payplane.idempotency import InProgress, InvalidKey, KeyReused, LeaseLost

__all__ = [
    "MAX_DETAILS",
    "STATUS_BY_ERROR",
    "Aborted",
    "AlreadyExists",
    "DeadlineExceeded",
    "DomainError",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "Unavailable",
    "bounded",
    "shown",
    "status_for",
]

# Status details longer than this are cut (gRPC's default metadata limit is 8 KiB, and a
# message naming a field and a limit needs far less).
MAX_DETAILS = 1_000
_CUT = " ...(cut)"


class DomainError(Exception):
    """Base of the errors a handler raises on purpose; its message is shown to the caller."""


class InvalidArgument(DomainError):
    pass


class NotFound(DomainError):
    pass


class AlreadyExists(DomainError):
    pass


class FailedPrecondition(DomainError):
    pass


class PermissionDenied(DomainError):
    pass


class Aborted(DomainError):
    pass


class ResourceExhausted(DomainError):
    pass


class Unavailable(DomainError):
    pass


class DeadlineExceeded(DomainError):
    pass


STATUS_BY_ERROR: Mapping[type[BaseException], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    Aborted: grpc.StatusCode.ABORTED,
    ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    KeyReused: grpc.StatusCode.INVALID_ARGUMENT,
    InvalidKey: grpc.StatusCode.INVALID_ARGUMENT,
    InProgress: grpc.StatusCode.ABORTED,
    LeaseLost: grpc.StatusCode.ABORTED,
}


def status_for(
    exc: BaseException, table: Mapping[type[BaseException], grpc.StatusCode] = STATUS_BY_ERROR
) -> grpc.StatusCode | None:
    """The code for `exc` from the nearest class in its MRO that the table names, or None."""
    for cls in type(exc).__mro__:
        code = table.get(cls)
        if code is not None:
            return code
    return None


def bounded(details: str, limit: int = MAX_DETAILS) -> str:
    """`details` cut to at most `limit` characters, marked when cut."""
    if len(details) <= limit:
        return details
    return details[: limit - len(_CUT)] + _CUT


def shown(value: str, limit: int = 64) -> str:
    """A caller-sent value quoted for a message: repr, at most about `limit` characters."""
    if len(value) <= limit:
        return repr(value)
    return repr(value[:limit]) + f"... ({len(value)} characters)"
