"""run_service as a process: started, stopped by SIGTERM, its spans (those made while
stopping too) exported to a real OTLP/gRPC receiver before it exits; a bad configuration
exits 2 naming the variable."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from payplane.tracing.testing import OtlpCollector

# A service whose start and stop each make a span. After run_service returns, os._exit skips
# the interpreter's exit hooks: whatever was not exported by then is lost.
SERVICE = """
import asyncio
import os
from opentelemetry import trace
from payplane.runtime import run_service
from payplane.settings import ServiceSettings

class Settings(ServiceSettings):
    greeting: str

class App:
    async def stop(self) -> None:
        with trace.get_tracer("t").start_as_current_span("stopping"):
            pass

async def start(settings: Settings) -> App:
    with trace.get_tracer("t").start_as_current_span("starting"):
        pass
    # Said on the loop's next turn: after run_service has put its signal handlers in place.
    asyncio.get_running_loop().call_soon(lambda: print("ready", flush=True))
    return App()

run_service("greeter", Settings, start)
os._exit(0)
"""


async def spawn(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SERVICE,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_a_stopped_service_exports_its_spans_before_it_exits() -> None:
    async with OtlpCollector() as collector:
        proc = await spawn(
            {
                "GREETING": "hello",
                "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
                "OTEL_BSP_SCHEDULE_DELAY": "3600000",  # nothing leaves on the timer
            }
        )
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line.strip() == b"ready", line
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        spans = await collector.wait_for(lambda s: len(s) >= 2, timeout_s=30)
    assert sorted(s.name for s in spans) == ["starting", "stopping"]
    assert {s.service_name for s in spans} == {"greeter"}


async def test_a_bad_configuration_exits_2_naming_the_variable() -> None:
    env = {k: v for k, v in os.environ.items() if k != "GREETING"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SERVICE, env=env, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert "GREETING" in err.decode()
