"""A service process's life: settings, logging, tracing, start, wait for a signal, stop.

    run_service("checkout", CheckoutSettings, start)   # in the service's main.py

`start(settings)` is the service's composition root and returns something with an async
`stop()` (which drains). A configuration problem exits with status 2 and a message naming
each bad variable; SIGTERM or SIGINT stops the service gracefully. The last step of every
exit is `shutdown_tracing()`: the spans still queued (those of the stop itself too) are
exported, waiting at most `payplane.tracing.FLUSH_TIMEOUT_S`.

No errors of its own: it reports `payplane.settings.SettingsError` and exits.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from pydantic_settings import BaseSettings

from payplane.settings import SettingsError, load
from payplane.tracing import configure_logging, setup_tracing, shutdown_tracing

__all__ = ["Stoppable", "run_service"]


class Stoppable(Protocol):
    async def stop(self) -> None: ...


S = TypeVar("S", bound=BaseSettings)


async def _run(
    name: str, settings_cls: type[S], start: Callable[[S], Awaitable[Stoppable]]
) -> None:
    settings = load(settings_cls)
    configure_logging(name, str(getattr(settings, "log_level", "INFO")))
    setup_tracing(name)
    app = await start(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await app.stop()


def run_service(
    name: str, settings_cls: type[S], start: Callable[[S], Awaitable[Stoppable]]
) -> None:
    """Run until SIGTERM/SIGINT; exit 2 with a clear message on bad configuration."""
    try:
        asyncio.run(_run(name, settings_cls, start))
    except SettingsError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        shutdown_tracing()
