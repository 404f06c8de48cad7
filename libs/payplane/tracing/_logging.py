from __future__ import annotations

import logging

from opentelemetry import trace

__all__ = ["TraceContextFilter", "configure_logging"]

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


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(TraceContextFilter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
