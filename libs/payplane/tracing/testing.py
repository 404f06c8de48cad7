"""Span capture for tests.

- `InMemorySpans`: the spans this process makes (an in-memory exporter on the process's
  provider, one per process, cleared per use).
- `OtlpCollector`: a real OTLP/gRPC receiver for what other processes export (point them at
  it with `OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint`); `trace(trace_id)` gives a
  `CollectedTrace` of `CollectedSpan`s, each with its resource's `service.name`.
"""

from __future__ import annotations

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ._collector import CollectedSpan, CollectedTrace, OtlpCollector
from ._setup import setup_tracing

__all__ = ["CollectedSpan", "CollectedTrace", "InMemorySpans", "OtlpCollector"]

_exporter: InMemorySpanExporter | None = None


class InMemorySpans:
    """Install (once) an in-memory exporter on the process provider and read what it caught."""

    def __init__(self) -> None:
        global _exporter
        if _exporter is None:
            _exporter = InMemorySpanExporter()
            setup_tracing("payplane-tests", exporter=_exporter)
        self._exporter = _exporter
        self._exporter.clear()

    def spans(self) -> list[ReadableSpan]:
        return list(self._exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.name == name]

    def clear(self) -> None:
        self._exporter.clear()
