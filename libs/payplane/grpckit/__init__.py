"""gRPC servers and channels the payplane way (grpc.aio).

    GrpcKitError                 base of this package's own errors
    └── ConfigurationError       create_server got an inconsistent setup or cannot bind
    errors.DomainError           what handlers raise; mapped to status codes in ONE table
    ├── InvalidArgument, NotFound, AlreadyExists, FailedPrecondition, PermissionDenied,
    └── Aborted, ResourceExhausted, Unavailable, DeadlineExceeded   (see payplane.grpckit.errors)

Server: `create_server(...)` returns a started `(server, port)` with grpc.health.v1 (SERVING
for each service) and reflection; `serve(server)` runs it and drains gracefully on SIGTERM or
SIGINT (`drain(server)` does the draining on demand). `HealthMonitor(server, checks)` turns
health NOT_SERVING while a dependency check fails (NATS, the database) and SERVING again
after; `set_serving(server, bool)` does it by hand. The health service `LIVENESS` stays
SERVING until the server drains: liveness and startup probes ask for it.

Every unary-unary RPC passes through the stages in INTERCEPTOR_ORDER: tracing,
authentication, authorisation, deadline, idempotency, errors. Health and reflection stay
open; streaming methods get authentication and authorisation only.

Lists: `PageTokens(key)` seals a handler's cursor into an opaque, tamper-evident page token
bound to the query (`seal(scope, cursor)` / `open(scope, token)`); a forged or edited token is
INVALID_ARGUMENT. Every status's details are cut to `errors.MAX_DETAILS` characters.
`fields` checks request fields at the edge (ids, bounded text, times in range) without ever
repeating the value.

Client: `channel(target, token)` attaches `authorization: Bearer <token>` and trace context;
`idempotency_metadata(key)` adds the idempotency-key a mutating call needs. A caller acting
for a person (the console) names them in `acting-user` metadata; `current_actor(context)`
gives "caller:person" for audit trails (authorisation stays with the caller).

Idempotent handlers read their record with `payplane.idempotency.current()`. What a failed
attempt leaves behind: a definitive refusal (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION,
...) before any checkpoint forgets the key; after a checkpoint it is stored and replayed; any
other failure (INTERNAL, UNAVAILABLE, a cancelled call) frees the lease so that a retry with
the same key resumes from the last checkpoint.
"""

from __future__ import annotations

from . import errors, fields
from ._actor import ACTING_USER, current_actor
from ._auth import OPEN_METHOD_PREFIXES, CallerAuth
from ._channel import channel, idempotency_metadata, new_idempotency_key
from ._health import HealthCheck, HealthMonitor, set_serving
from ._paging import MAX_PAGE_TOKEN, PageTokens
from ._pipeline import (
    IDEMPOTENCY_KEY,
    INTERCEPTOR_ORDER,
    REPLAYED,
    PayplaneInterceptor,
    current_caller,
)
from ._server import LIVENESS, ConfigurationError, GrpcKitError, create_server, drain, serve

__all__ = [
    "ACTING_USER",
    "IDEMPOTENCY_KEY",
    "INTERCEPTOR_ORDER",
    "LIVENESS",
    "MAX_PAGE_TOKEN",
    "OPEN_METHOD_PREFIXES",
    "REPLAYED",
    "CallerAuth",
    "ConfigurationError",
    "GrpcKitError",
    "HealthCheck",
    "HealthMonitor",
    "PageTokens",
    "PayplaneInterceptor",
    "channel",
    "create_server",
    "current_actor",
    "current_caller",
    "drain",
    "errors",
    "fields",
    "idempotency_metadata",
    "new_idempotency_key",
    "serve",
    "set_serving",
]
