"""Idempotency keys for mutating RPCs, with recovery points for multi-step operations.

    IdempotencyError        base of this package's errors
    ├── InvalidKey          the key is empty or longer than 255 characters  -> INVALID_ARGUMENT
    ├── KeyReused           the key was used before with a different request -> INVALID_ARGUMENT
    ├── InProgress          the first request with this key is still running -> ABORTED
    └── LeaseLost           another attempt took the running operation over  -> ABORTED
    (the status codes are applied by payplane.grpckit's one error table)

A request is scoped by (caller, method, key). `begin()` either starts it (`Started(record)`),
or replays the stored outcome (`Replay(response, code, details)`). A record that is still
running but whose lease ran out (its process crashed or gave up) is taken over and resumes
from its last recovery point (Brandur Leach's "atomic phases"):

    record = current()                      # inside a handler behind the interceptor
    if record.recovery_point is None:
        charge = await stripe.create(..., idempotency_key=record.stripe_key("charge"))
        await record.checkpoint("charged", {"charge": charge.id})
    ...

A checkpoint that records a database effect should commit with it: pass the caller's open
transaction, `await record.checkpoint("refund_created", {...}, session=session)` (the
idempotency table must live in that database), and a crash can no longer fall between the
effect and its recovery point.

Keys expire after `ttl_s` (24 h by default); expired keys count as absent and `sweep()`
deletes them. The clock is the application's (UTC); keep hosts NTP-synced.
"""

from __future__ import annotations

from ._errors import IdempotencyError, InProgress, InvalidKey, KeyReused, LeaseLost
from ._record import (
    CODE_OK,
    IdempotencyBackend,
    Outcome,
    Record,
    Replay,
    Started,
    bind_current,
    current,
    derive_stripe_key,
)
from ._store import IdempotencyStore
from ._table import UTCDateTime, idempotency_table

__all__ = [
    "CODE_OK",
    "IdempotencyBackend",
    "IdempotencyError",
    "IdempotencyStore",
    "InProgress",
    "InvalidKey",
    "KeyReused",
    "LeaseLost",
    "Outcome",
    "Record",
    "Replay",
    "Started",
    "UTCDateTime",
    "bind_current",
    "current",
    "derive_stripe_key",
    "idempotency_table",
]
