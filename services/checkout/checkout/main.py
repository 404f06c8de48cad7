"""`python -m checkout`: run the checkout service until SIGTERM/SIGINT, then drain."""

from __future__ import annotations

import asyncio
import signal
import sys

from payplane.settings import SettingsError, load
from payplane.tracing import configure_logging, setup_tracing

from .bootstrap import start
from .settings import CheckoutSettings


async def run() -> None:
    settings = load(CheckoutSettings)
    configure_logging("checkout", settings.log_level)
    setup_tracing("checkout")
    app = await start(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await app.stop()


def main() -> None:
    try:
        asyncio.run(run())
    except SettingsError as exc:
        print(f"checkout: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
