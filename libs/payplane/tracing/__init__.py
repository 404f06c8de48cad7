"""OpenTelemetry for payplane processes.

`setup_tracing(service)` once when a process starts: OTLP/gRPC export when
`OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set (Jaeger reads
OTLP natively); `OTEL_TRACES_EXPORTER` (`otlp`, `console`, `none`, comma-separated), when
set, chooses instead; with neither, spans are made and propagated but not exported.
`service.name` is the service's own name unless `OTEL_SERVICE_NAME` (or
`OTEL_RESOURCE_ATTRIBUTES`) names another.
`shutdown_tracing()` as a process stops: the queued spans leave, within a bounded time.
`inject`/`extract` carry W3C trace context through NATS headers (or any str mapping);
`configure_logging` puts `trace_id` and `span_id` on every log line, masks card numbers
(Luhn-valid, 13-19 digits), Stripe secret and restricted keys, webhook secrets and client
secrets in every record (`RedactingFilter`, `redact_secrets`), and keeps the Stripe SDK's
logger at WARNING (its INFO lines carry request URLs and Stripe's messages).

No errors of its own: a missing exporter configuration means "do not export".
"""

from __future__ import annotations

from ._logging import TraceContextFilter, configure_logging, redact_every_handler
from ._redact import RedactingFilter, luhn_valid, redact_secrets
from ._setup import (
    FLUSH_TIMEOUT_S,
    extract,
    inject,
    setup_tracing,
    shutdown_tracing,
    tracer,
    tracer_provider,
)

__all__ = [
    "FLUSH_TIMEOUT_S",
    "RedactingFilter",
    "TraceContextFilter",
    "configure_logging",
    "extract",
    "inject",
    "luhn_valid",
    "redact_every_handler",
    "redact_secrets",
    "setup_tracing",
    "shutdown_tracing",
    "tracer",
    "tracer_provider",
]
