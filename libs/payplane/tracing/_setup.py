from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, MutableMapping

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

__all__ = [
    "FLUSH_TIMEOUT_S",
    "extract",
    "inject",
    "setup_tracing",
    "shutdown_tracing",
    "tracer",
    "tracer_provider",
]

log = logging.getLogger("payplane.tracing")

# How long a stopping process waits for its last spans to leave. Well inside a pod's grace
# period after the gRPC drain; a trace backend that does not answer costs no more than this.
FLUSH_TIMEOUT_S = 5.0

_provider: TracerProvider | None = None


def _resource(service_name: str) -> Resource:
    """`service.name` is the environment's when it names one (OTEL_SERVICE_NAME, or
    service.name in OTEL_RESOURCE_ATTRIBUTES: a deployment's choice), else the service's."""
    from_env = OTELResourceDetector().detect().attributes.get(SERVICE_NAME)
    return Resource.create({} if from_env else {SERVICE_NAME: service_name})


def _exporter_names() -> list[str]:
    """Which exporters the environment asks for: OTEL_TRACES_EXPORTER when set (`otlp`,
    `console`, `none`, comma-separated); else OTLP when an OTLP endpoint is set."""
    names = [
        n.strip().lower()
        for n in os.environ.get("OTEL_TRACES_EXPORTER", "").split(",")
        if n.strip()
    ]
    if names:
        return [] if "none" in names else names
    endpoints = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
    return ["otlp"] if any(os.environ.get(var) for var in endpoints) else []


def _exporter(name: str) -> SpanExporter | None:
    if name == "otlp":
        # Imported here: it loads grpc's channel machinery, which a process that exports
        # nothing does not need. Endpoint, TLS, headers and timeout come from the standard
        # OTEL_EXPORTER_OTLP_[TRACES_]* variables.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if name == "console":
        return ConsoleSpanExporter()
    log.warning("OTEL_TRACES_EXPORTER: %r is not an exporter here (otlp, console, none)", name)
    return None


def tracer_provider(service_name: str, exporter: SpanExporter | None = None) -> TracerProvider:
    """A tracer provider for `service_name` configured from the environment, not installed.

    `exporter` replaces the environment's choice (tests pass an in-memory exporter; it gets
    a SimpleSpanProcessor, so spans are there as soon as they end)."""
    provider = TracerProvider(resource=_resource(service_name))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        return provider
    for name in _exporter_names():
        chosen = _exporter(name)
        if chosen is not None:
            provider.add_span_processor(BatchSpanProcessor(chosen))
    return provider


def setup_tracing(service_name: str, exporter: SpanExporter | None = None) -> TracerProvider:
    """Install the process's tracer provider (once; later calls return the first).

    Exports over OTLP/gRPC when OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is set,
    prints spans when OTEL_TRACES_EXPORTER=console, and otherwise makes and propagates spans
    without exporting them. `service.name` is `service_name` unless OTEL_SERVICE_NAME (or
    OTEL_RESOURCE_ATTRIBUTES) names another. `exporter` overrides the environment.
    """
    global _provider
    if _provider is not None:
        if exporter is not None:
            _provider.add_span_processor(SimpleSpanProcessor(exporter))
        return _provider
    provider = tracer_provider(service_name, exporter)
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def shutdown_tracing(timeout_s: float = FLUSH_TIMEOUT_S) -> bool:
    """Export the spans still queued and stop exporting: the last step of a process's stop.

    Waits at most `timeout_s` (an export to a backend that does not answer is abandoned
    then, and the process may exit); True when everything left in time. Without it the
    spans would still leave through the SDK's exit hook, unbounded in time."""
    provider = _provider
    if provider is None:
        return True
    done = threading.Event()

    def flush() -> None:
        try:
            provider.shutdown()
        except Exception:  # a broken exporter must not break the stop
            log.exception("tracing shutdown failed")
        finally:
            done.set()

    threading.Thread(target=flush, name="payplane-tracing-shutdown", daemon=True).start()
    if not done.wait(timeout_s):
        log.warning("spans not exported within %.1fs of the stop; dropped", timeout_s)
        return False
    return True


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def inject(headers: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Write the current W3C trace context (traceparent, tracestate) into `headers`."""
    carrier: MutableMapping[str, str] = {} if headers is None else headers
    propagate.inject(carrier)
    return carrier


def extract(headers: Mapping[str, str] | None) -> Context:
    """The context carried by `headers` (an empty context when there is none)."""
    return propagate.extract(dict(headers or {}))
