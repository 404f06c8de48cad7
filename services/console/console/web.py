"""The console's web core: the app state, sessions on every request, CSRF and sign-in
checks, security headers, rendering, and the page registry's shape.

Middlewares, outermost first: session (read, refresh, write the cookie), errors (a
service's refusal becomes a page showing the service's own status and message), CSRF (every
state-changing request), sign-in (everything but /login, /healthz and /static).
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

import grpc
import jinja2
from aiohttp import web
from markupsafe import Markup

from . import csrf
from .backends import Backends, ServiceRefused, Services
from .formatting import FILTERS
from .roles import may
from .sessions import Session, SessionCodec
from .users import Directory, User

__all__ = ["CONSOLE", "Console", "Page", "View", "build_app", "item_path", "local_path", "redirect"]

log = logging.getLogger("console")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class _State:
    """Who is asking, and the session to send back (dirty: the cookie must be rewritten)."""

    session: Session | None = None
    user: User | None = None
    dirty: bool = False


_STATE = web.RequestKey("console.state", _State)


def _state(request: web.Request) -> _State:
    state = request.get(_STATE)
    if state is None:  # /static and /healthz skip the session middleware
        state = request[_STATE] = _State()
    return state


_PUBLIC = ("/login", "/healthz", "/static/")
_REFRESH_S = 60.0  # how stale `seen_at` may be before the cookie is re-issued

# Scripts are never served: the pages work without them. Styles come from /static only.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}

_STATUS = {
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


@dataclass(frozen=True)
class Page:
    """One screen of the console: its nav entry (shown to roles with `capability`) and
    its routes. Adding a screen is a module with a PAGE, listed in pages/__init__.py."""

    name: str
    title: str
    path: str
    capability: str
    routes: web.RouteTableDef


@dataclass
class Console:
    codec: SessionCodec
    directory: Directory
    backends: Backends
    templates: jinja2.Environment
    pages: tuple[Page, ...]
    cookie_secure: bool = False
    trace_url_template: str = ""
    started_at: float = field(default_factory=time.time)

    @property
    def cookie_name(self) -> str:
        # The __Host- prefix makes browsers insist on Secure, Path=/ and no Domain.
        return "__Host-payplane_console" if self.cookie_secure else "payplane_console"


CONSOLE = web.AppKey("console", Console)


def redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def item_path(prefix: str, item_id: str) -> str:
    """`prefix/<item_id>` with the id percent-encoded (ids come from the URL or a service)."""
    return f"{prefix}/{quote(item_id, safe='')}"


def local_path(target: str | None, default: str = "/") -> str:
    """`target` if it is a path on this site (never another host: no open redirect)."""
    if (
        target
        and target.startswith("/")
        and not target.startswith(("//", "/\\"))
        and target.isprintable()
        and len(target) <= 2000
    ):
        return target
    return default


class View:
    """A request as a page handler sees it: the user, their services, rendering, flashes."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.console = request.app[CONSOLE]

    @property
    def signed_in(self) -> bool:
        return _state(self.request).user is not None

    @property
    def user(self) -> User:
        user = _state(self.request).user
        if user is None:  # the sign-in middleware lets no anonymous request reach a page
            raise web.HTTPUnauthorized()
        return user

    @property
    def services(self) -> Services:
        return self.console.backends.for_user(self.user)

    @property
    def session(self) -> Session | None:
        return _state(self.request).session

    def set_session(self, session: Session | None) -> None:
        state = _state(self.request)
        state.session, state.dirty = session, True

    def flash(self, message: str, *, error: bool = False) -> None:
        if self.session is not None:
            self.set_session(replace(self.session, flash=("error:" if error else "ok:") + message))

    def _take_flash(self) -> tuple[str, str] | None:
        session = self.session
        if session is None or not session.flash:
            return None
        self.set_session(replace(session, flash=""))
        kind, _, text = session.flash.partition(":")
        return kind, text

    def new_key(self) -> str:
        """An idempotency key for one form: a resubmitted form repeats, never doubles."""
        return secrets.token_hex(16)

    def may(self, capability: str) -> bool:
        user = _state(self.request).user
        return user is not None and may(user.role, capability)

    def render(self, template: str, *, http_status: int = 200, **context: Any) -> web.Response:
        user = _state(self.request).user
        session = self.session
        page = self.console.templates.get_template(template).render(
            user=user,
            csrf_token=session.csrf if session else "",
            csrf_field=Markup('<input type="hidden" name="{}" value="{}">').format(
                csrf.FIELD, session.csrf if session else ""
            ),
            nav=[p for p in self.console.pages if user and may(user.role, p.capability)],
            may=self.may,
            flash=self._take_flash(),
            path=self.request.path,
            new_key=self.new_key,
            trace_url=self.trace_url,
            **context,
        )
        return web.Response(
            text=page, status=http_status, content_type="text/html", charset="utf-8"
        )

    def trace_url(self, trace_id: str) -> str:
        template = self.console.trace_url_template
        return template.replace("{trace_id}", trace_id) if template and trace_id else ""

    def refused(self, exc: ServiceRefused) -> web.Response:
        return self.render(
            "error.html",
            http_status=_STATUS.get(exc.code, 502),
            title=f"{exc.target.label} refused",
            refusal=exc,
        )


# -- middlewares ----------------------------------------------------------------------------


def _public(path: str) -> bool:
    return path == "/healthz" or path.startswith(_PUBLIC)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ServiceRefused as exc:
        log.info("refused: %s", exc)
        return View(request).refused(exc)
    except web.HTTPException:
        raise
    except Exception:
        error_id = secrets.token_hex(6)
        log.exception("error %s handling %s %s", error_id, request.method, request.path)
        return View(request).render(
            "error.html", http_status=500, title="Something went wrong", error_id=error_id
        )


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    console = request.app[CONSOLE]
    if request.path.startswith("/static/") or request.path == "/healthz":
        return await handler(request)
    raw = request.cookies.get(console.cookie_name)
    session = console.codec.decode(raw) if raw else None
    user = None
    if session is not None and session.signed_in:
        user = console.directory.get(session.user)
        if user is None or not hmac.compare_digest(
            session.fingerprint, user.fingerprint(console.codec.key)
        ):
            user, session = None, None  # removed, or the password changed: signed out
    dirty = False
    if session is None:
        session, dirty = console.codec.anonymous(), True
    state = request[_STATE] = _State(session, user, dirty)
    response = await handler(request)
    final = state.session
    if final is None:
        response.del_cookie(console.cookie_name, path="/")
    elif state.dirty or (final.signed_in and console.codec.clock() - final.seen_at > _REFRESH_S):
        response.set_cookie(
            console.cookie_name,
            console.codec.encode(console.codec.touched(final)),
            path="/",
            max_age=int(console.codec.max_age_s),
            httponly=True,
            samesite="Strict",
            secure=console.cookie_secure,
        )
    return response


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in csrf.SAFE_METHODS or request.path == "/healthz":
        return await handler(request)
    view = View(request)
    session = view.session
    form = await request.post()
    submitted = form.get(csrf.FIELD)
    if not csrf.origin_allowed(request.headers.get("Origin"), request.host) or not (
        session is not None
        and isinstance(submitted, str)
        and csrf.token_matches(session.csrf, submitted)
    ):
        log.warning("CSRF check failed: %s %s", request.method, request.path)
        return view.render(
            "error.html",
            http_status=403,
            title="Request refused",
            message="This form did not come from this console, or it has expired. "
            "Go back, reload the page and try again.",
        )
    return await handler(request)


@web.middleware
async def signin_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if _public(request.path) or _state(request).user is not None:
        return await handler(request)
    if request.method in csrf.SAFE_METHODS:
        return redirect(f"/login?next={quote(request.path_qs, safe='')}")
    return View(request).render(
        "error.html", http_status=401, title="Signed out", message="Sign in again, then retry."
    )


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.app[CONSOLE].cookie_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"


def build_app(console: Console, core_routes: web.RouteTableDef, static_dir: str) -> web.Application:
    app = web.Application(
        middlewares=[session_middleware, errors_middleware, csrf_middleware, signin_middleware],
        client_max_size=64 * 1024,
    )
    app[CONSOLE] = console
    app.add_routes(core_routes)
    for page in console.pages:
        app.add_routes(page.routes)
    app.router.add_static("/static/", static_dir)
    app.on_response_prepare.append(_security_headers)
    console.templates.filters.update(FILTERS)
    return app
