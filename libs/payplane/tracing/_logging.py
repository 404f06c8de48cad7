from __future__ import annotations

import logging

from opentelemetry import trace

from ._redact import RedactingFilter

__all__ = ["QUIET_LOGGERS", "TraceContextFilter", "configure_logging", "redact_every_handler"]

FORMAT = (
    "%(asctime)s %(levelname)s %(service)s %(name)s "
    "trace_id=%(trace_id)s span_id=%(span_id)s %(message)s"
)


class TraceContextFilter(logging.Filter):
    """Adds trace_id/span_id (hex, or '-' outside a span) and the service name to records."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = trace.get_current_span().get_span_context()
        record.trace_id = format(ctx.trace_id, "032x") if ctx.is_valid else "-"
        record.span_id = format(ctx.span_id, "016x") if ctx.is_valid else "-"
        record.service = self.service
        return True


# Libraries whose INFO lines carry what must not reach logs: the Stripe SDK logs every
# request's URL (a card number passed where an id belongs lands in the path) and Stripe's
# error message (which quotes it back).
QUIET_LOGGERS = {"stripe": logging.WARNING}


def configure_logging(service: str, level: str = "INFO") -> None:
    """One stream handler on the root logger: trace ids on every line, card numbers and
    secrets masked in every record (RedactingFilter), chatty libraries held at WARNING."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(TraceContextFilter(service))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name, floor in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(floor)


def redact_every_handler(logger: logging.Logger | None = None) -> None:
    """Put a RedactingFilter on each handler of `logger` (the root by default) that has
    none: for a process that configured its handlers some other way."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
