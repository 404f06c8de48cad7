"""Sign-in, sign-out, the home page and the health check (not in the navigation)."""

from __future__ import annotations

import logging

from aiohttp import web

from ..web import CONSOLE, View, local_path, redirect

__all__ = ["routes"]

log = logging.getLogger("console.auth")
routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


@routes.get("/login")
async def login_form(request: web.Request) -> web.Response:
    view = View(request)
    if view.signed_in:
        return redirect(local_path(request.query.get("next")))
    return view.render("login.html", next=local_path(request.query.get("next")), error="")


@routes.post("/login")
async def login(request: web.Request) -> web.Response:
    view = View(request)
    form = await request.post()
    name = str(form.get("name", "")).strip().lower()
    password = str(form.get("password", ""))
    target = local_path(str(form.get("next", "")))
    directory = request.app[CONSOLE].directory
    user = await directory.authenticate(name, password) if name and password else None
    if user is None:
        log.warning("sign-in refused for %r (locked: %s)", name[:40], directory.locked(name))
        return view.render(
            "login.html", http_status=401, next=target, error="Unknown name or wrong password."
        )
    codec = request.app[CONSOLE].codec
    view.set_session(codec.signed_in(user.name, user.fingerprint(codec.key)))
    log.info("%s (%s) signed in", user.name, user.role.value)
    return redirect(target)


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    view = View(request)
    log.info("%s signed out", view.user.name)
    view.set_session(None)
    return redirect("/login")


@routes.get("/")
async def home(request: web.Request) -> web.Response:
    return View(request).render("home.html")
