"""Webhook endpoints: create, retrieve, update, delete, list (at most 16 per account).

The signing secret (`whsec_...`) is returned only by create. `connect=true` makes a
platform's endpoint receive its connected accounts' events instead of its own. Delivery
itself lives in `stripe_emulator.webhooks`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from ..errors import invalid
from ..params import Params, merge_metadata
from ..router import route
from ..state import Ctx
from ..store import Obj
from ..webhooks import CONNECT_FIELD, SECRET_FIELD  # also registers the control calls
from .common import list_response
from .events import known_event_type

__all__ = ["MAX_ENDPOINTS", "public"]

MAX_ENDPOINTS = 16
_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")


def public(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def _url(p: Params, required: bool) -> str | None:
    url = p.string("url", required)
    if url is None:
        return None
    parts = urlsplit(url) if " " not in url else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid(f"Invalid URL: {url}. URLs must begin with http:// or https://.", "url")
    try:
        parts.port  # noqa: B018  (raises on a malformed port)
    except ValueError:
        raise invalid(f"Invalid URL: {url}. The port is not valid.", "url") from None
    return url


def _enabled_events(p: Params, required: bool) -> list[str] | None:
    events = p.strings("enabled_events", required)
    if events is None:
        return None
    if not events:
        raise invalid("Missing required param: enabled_events.", "enabled_events")
    out: list[str] = []
    for name in events:
        if name != "*" and not known_event_type(name):
            raise invalid(
                f"Invalid enabled_events: {name!r} is not a valid event type. Use '*' for "
                "every event or a type such as 'charge.succeeded'.",
                "enabled_events",
            )
        if name not in out:
            out.append(name)
    return out


@route("POST", "/v1/webhook_endpoints", perm="webhook_endpoints")
def create(ctx: Ctx, p: Params) -> Obj:
    url = _url(p, True)
    enabled = _enabled_events(p, True)
    description = p.string("description")
    metadata = p.metadata() or {}
    api_version = p.string("api_version", max_len=64)
    if api_version is not None and not _API_VERSION.match(api_version):
        raise invalid(f"Invalid api_version: {api_version}", "api_version")
    connect = bool(p.boolean("connect"))
    p.done()
    count = sum(1 for _ in ctx.store.iter_ids(ctx.account, "webhook_endpoint"))
    if count >= MAX_ENDPOINTS:
        raise invalid(
            f"You have reached the maximum of {MAX_ENDPOINTS} test webhook endpoints.",
            "url",
        )
    endpoint: Obj = {
        "id": ctx.new_id("we"),
        "object": "webhook_endpoint",
        "api_version": api_version,
        "application": None,
        "created": ctx.now,
        "description": description,
        "enabled_events": enabled,
        "livemode": False,
        "metadata": metadata,
        "status": "enabled",
        "url": url,
        SECRET_FIELD: ctx.new_id("whsec", 32),
        CONNECT_FIELD: connect,
    }
    ctx.insert(endpoint)
    answer = public(endpoint)
    answer["secret"] = endpoint[SECRET_FIELD]
    return answer


@route("GET", "/v1/webhook_endpoints/{id}", perm="webhook_endpoints")
def retrieve(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    return public(ctx.get(id, "webhook_endpoint"))


@route("POST", "/v1/webhook_endpoints/{id}", perm="webhook_endpoints")
def update(ctx: Ctx, p: Params, id: str) -> Obj:
    endpoint = ctx.get(id, "webhook_endpoint")
    changes: dict[str, Any] = {}
    url = _url(p, False)
    if url is not None:
        changes["url"] = url
    enabled = _enabled_events(p, False)
    if enabled is not None:
        changes["enabled_events"] = enabled
    disabled = p.boolean("disabled")
    if disabled is not None:
        changes["status"] = "disabled" if disabled else "enabled"
    if p.has("description"):
        changes["description"] = p.string("description")
    if p.has("metadata"):
        changes["metadata"] = merge_metadata(endpoint["metadata"], p.metadata())
    p.done()
    endpoint.update(changes)
    ctx.save(endpoint)
    return public(endpoint)


@route("DELETE", "/v1/webhook_endpoints/{id}", perm="webhook_endpoints")
def delete(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    ctx.get(id, "webhook_endpoint")
    ctx.store.delete(id)
    return {"id": id, "object": "webhook_endpoint", "deleted": True}


@route("GET", "/v1/webhook_endpoints", perm="webhook_endpoints")
def list_(ctx: Ctx, p: Params) -> Obj:
    page = list_response(ctx, p, "webhook_endpoint", "/v1/webhook_endpoints")
    page["data"] = [public(obj) for obj in page["data"]]
    return page
