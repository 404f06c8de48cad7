"""setup_tracing as a process uses it: a child process configured by the environment exports
to a real OTLP/gRPC receiver (OtlpCollector); its service.name, its exporter choice and its
flush at stop are read from what arrives."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from payplane.tracing import tracer_provider
from payplane.tracing.testing import CollectedSpan, OtlpCollector

# Spans made in a child process that exits normally (the SDK's exit hook flushes them).
MAKE_SPAN = """
from opentelemetry import trace
from payplane.tracing import setup_tracing
setup_tracing("checkout")
with trace.get_tracer("t").start_as_current_span("work"):
    pass
"""
# The same, leaving through shutdown_tracing alone: os._exit skips the exit hooks.
FLUSH_THEN_EXIT = """
import os, sys
from opentelemetry import trace
from payplane.tracing import setup_tracing, shutdown_tracing
setup_tracing("checkout")
with trace.get_tracer("t").start_as_current_span("work"):
    pass
done = shutdown_tracing(timeout_s=float(sys.argv[1]))
print("flushed" if done else "abandoned", flush=True)
os._exit(0)
"""
OTEL_VARS = [
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_INSECURE",
    "OTEL_BSP_SCHEDULE_DELAY",
]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in OTEL_VARS:
        monkeypatch.delenv(var, raising=False)
    yield


async def run_child(code: str, env: dict[str, str], *args: str) -> str:
    """Run `code` in a fresh interpreter with `env` on top of ours; its stdout. Awaited, so
    the collector keeps serving on this loop meanwhile."""
    # Nothing leaves on the batch timer: spans arrive through the flush at exit or stop.
    env = {**os.environ, "OTEL_BSP_SCHEDULE_DELAY": "3600000", **env}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def the_span(collector: OtlpCollector) -> CollectedSpan:
    spans = await collector.wait_for(lambda s: any(x.name == "work" for x in s), timeout_s=30)
    (span,) = [s for s in spans if s.name == "work"]
    return span


async def test_service_name_is_the_services_own_by_default() -> None:
    async with OtlpCollector() as collector:
        await run_child(MAKE_SPAN, {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint})
        span = await the_span(collector)
    assert span.service_name == "checkout"


async def test_otel_service_name_is_respected() -> None:
    async with OtlpCollector() as collector:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, "OTEL_SERVICE_NAME": "canary"}
        await run_child(MAKE_SPAN, env)
        span = await the_span(collector)
    assert span.service_name == "canary"


async def test_resource_attributes_from_the_environment_are_respected() -> None:
    async with OtlpCollector() as collector:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
            "OTEL_RESOURCE_ATTRIBUTES": "service.name=checkout-eu,deployment.environment=dev",
        }
        await run_child(MAKE_SPAN, env)
        span = await the_span(collector)
    assert span.service_name == "checkout-eu"
    assert span.resource["deployment.environment"] == "dev"


async def test_the_traces_specific_endpoint_is_enough_to_export() -> None:
    async with OtlpCollector() as collector:
        await run_child(MAKE_SPAN, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": collector.endpoint})
        span = await the_span(collector)
    assert span.service_name == "checkout"


async def test_the_console_exporter_prints_spans() -> None:
    out = await run_child(MAKE_SPAN, {"OTEL_TRACES_EXPORTER": "console"})
    assert '"name": "work"' in out and '"service.name": "checkout"' in out


async def test_shutdown_tracing_exports_what_is_queued() -> None:
    async with OtlpCollector() as collector:
        out = await run_child(
            FLUSH_THEN_EXIT, {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint}, "30"
        )
        assert out.strip() == "flushed"
        assert (await the_span(collector)).service_name == "checkout"


async def test_shutdown_tracing_gives_up_on_a_backend_that_does_not_answer() -> None:
    with socket.socket() as silent:  # accepts connections, never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        out = await run_child(FLUSH_THEN_EXIT, {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}, "0.5")
    assert out.strip() == "abandoned"


def _exporters(monkeypatch: pytest.MonkeyPatch, **env: str) -> list[str]:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    provider = tracer_provider("checkout")
    try:
        processors = provider._active_span_processor._span_processors
        assert all(isinstance(p, BatchSpanProcessor) for p in processors)
        return [type(p.span_exporter).__name__ for p in processors]  # type: ignore[attr-defined]
    finally:
        provider.shutdown()


def test_the_environment_chooses_the_exporters(monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = "http://127.0.0.1:4317"
    assert _exporters(monkeypatch) == []
    assert _exporters(monkeypatch, OTEL_TRACES_EXPORTER="console") == [ConsoleSpanExporter.__name__]
    assert _exporters(monkeypatch, OTEL_EXPORTER_OTLP_ENDPOINT=endpoint) == [
        ConsoleSpanExporter.__name__  # OTEL_TRACES_EXPORTER, when set, chooses
    ]
    assert _exporters(monkeypatch, OTEL_TRACES_EXPORTER="otlp,console") == [
        "OTLPSpanExporter",
        ConsoleSpanExporter.__name__,
    ]
    assert _exporters(monkeypatch, OTEL_TRACES_EXPORTER="none") == []
    monkeypatch.delenv("OTEL_TRACES_EXPORTER")
    assert _exporters(monkeypatch) == ["OTLPSpanExporter"]
    assert _exporters(monkeypatch, OTEL_TRACES_EXPORTER="jaeger") == []  # unknown: warned
