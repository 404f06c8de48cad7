"""The console's composition root: the one place that builds its clients and server."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import jinja2
from aiohttp import web

from .backends import Backends
from .pages import PAGES
from .pages.core import routes as core_routes
from .sessions import SessionCodec
from .settings import ConsoleSettings
from .users import Directory
from .web import Console, build_app

__all__ = ["ConsoleApp", "create_console", "start"]

log = logging.getLogger("console")
_HERE = Path(__file__).parent


def templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True,  # every value is escaped unless a chart hands over Markup
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def create_console(settings: ConsoleSettings) -> tuple[web.Application, Backends]:
    backends = Backends(
        {"checkout": settings.checkout_address, "ledger": settings.ledger_address},
        settings.credentials,
        settings.grpc_timeout_s,
    )
    console = Console(
        codec=SessionCodec(
            settings.console_session_secret,
            max_age_s=settings.console_session_max_age_s,
            idle_s=settings.console_session_idle_s,
        ),
        directory=Directory(settings.users),
        backends=backends,
        templates=templates(),
        pages=PAGES,
        cookie_secure=settings.console_cookie_secure,
        trace_url_template=settings.trace_url_template,
    )
    return build_app(console, core_routes, str(_HERE / "static")), backends


@dataclass
class ConsoleApp:
    runner: web.AppRunner
    backends: Backends
    port: int

    async def stop(self) -> None:
        await self.runner.cleanup()
        await self.backends.close()


async def start(settings: ConsoleSettings) -> ConsoleApp:
    """Serve the console; returns once it listens (port 0 picks a free one)."""
    app, backends = create_console(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.console_host, settings.console_port)
    await site.start()
    port = settings.console_port
    for address in runner.addresses:
        port = address[1]
        break
    log.info("console up: http://%s:%d", settings.console_host, port)
    return ConsoleApp(runner, backends, port)
