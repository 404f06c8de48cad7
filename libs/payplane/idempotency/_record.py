from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from ._errors import InvalidKey

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = [
    "CODE_OK",
    "IdempotencyBackend",
    "Outcome",
    "Record",
    "Replay",
    "Started",
    "bind_current",
    "current",
    "derive_stripe_key",
    "validate_scope",
]

CODE_OK = 0  # grpc.StatusCode.OK; codes are stored as their integer values
MAX_KEY_LENGTH = 255
MAX_CALLER_LENGTH = 128
MAX_METHOD_LENGTH = 255
STRIPE_KEY_PREFIX = "pp1-"


def validate_scope(caller: str, method: str, key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidKey(f"idempotency key must be 1 to {MAX_KEY_LENGTH} characters")
    if not key.isprintable():
        raise InvalidKey("idempotency key must be printable")
    if not caller or len(caller) > MAX_CALLER_LENGTH:
        raise InvalidKey(f"caller must be 1 to {MAX_CALLER_LENGTH} characters")
    if not method or len(method) > MAX_METHOD_LENGTH:
        raise InvalidKey(f"method must be 1 to {MAX_METHOD_LENGTH} characters")


def derive_stripe_key(caller: str, method: str, key: str, step: str) -> str:
    """A Stripe idempotency key for one step of one operation: the same inputs, the same key.

    JSON-encoding the parts keeps ("a", "bc") and ("ab", "c") apart.
    """
    material = json.dumps([caller, method, key, step], separators=(",", ":"))
    return STRIPE_KEY_PREFIX + hashlib.sha256(material.encode()).hexdigest()


class IdempotencyBackend(Protocol):
    """What the gRPC interceptor needs; IdempotencyStore and the in-memory fake provide it."""

    async def begin(self, caller: str, method: str, key: str, request_hash: str) -> Outcome: ...

    async def finish(
        self, record: Record, response: bytes, code: int = CODE_OK, details: str = ""
    ) -> None: ...

    async def abandon(self, record: Record) -> bool: ...

    async def release(self, record: Record) -> bool: ...

    async def checkpoint(
        self,
        record: Record,
        point: str,
        data: dict[str, Any],
        *,
        session: AsyncSession | None = None,
    ) -> None: ...

    async def renew(self, record: Record) -> None: ...

    async def sweep(self, now: datetime | None = None) -> int: ...


@dataclass(eq=False)
class Record:
    """One running operation, owned by this attempt while `lease_token` is the stored one."""

    caller: str
    method: str
    key: str
    request_hash: str
    lease_token: str
    backend: IdempotencyBackend = field(repr=False)
    recovery_point: str | None = None
    recovery_data: dict[str, Any] = field(default_factory=dict)
    # True when this attempt took over from an earlier one (crashed, timed out, failed).
    resumed: bool = False

    async def checkpoint(
        self,
        point: str,
        data: dict[str, Any] | None = None,
        *,
        session: AsyncSession | None = None,
    ) -> None:
        """Persist a recovery point (and extend the lease).

        Call it after each side effect that must not be repeated; `data` must be JSON-ready.
        Without `session` it is its own commit. With `session` (the caller's open transaction
        on the database that holds the idempotency table) it joins that transaction: the
        recovery point commits with the effect it records, or neither does, so no crash can
        leave an effect without its recovery point. `recovery_point` changes on this record
        only once that transaction commits.
        Raises LeaseLost when another attempt has taken the operation over (with `session`,
        the caller's transaction must then roll back: it is no longer this attempt's).
        """
        await self.backend.checkpoint(self, point, dict(data or {}), session=session)

    async def renew(self) -> None:
        """Extend the lease for a long step that has nothing to checkpoint yet."""
        await self.backend.renew(self)

    def stripe_key(self, step: str) -> str:
        """The Stripe idempotency key for `step` of this operation (stable across retries)."""
        return derive_stripe_key(self.caller, self.method, self.key, step)


@dataclass(frozen=True)
class Started:
    """Run the operation; `record.recovery_point` says where an earlier attempt got to."""

    record: Record


@dataclass(frozen=True)
class Replay:
    """The operation already finished: send this stored outcome again."""

    response: bytes
    code: int = CODE_OK
    details: str = ""


Outcome = Started | Replay

_current: ContextVar[Record | None] = ContextVar("payplane_idempotency_record", default=None)


def current() -> Record | None:
    """The record of the idempotent RPC this code runs inside, or None."""
    return _current.get()


@contextmanager
def bind_current(record: Record | None) -> Iterator[None]:
    """Make `record` what `current()` returns within the block (the interceptor does this)."""
    token = _current.set(record)
    try:
        yield
    finally:
        _current.reset(token)
