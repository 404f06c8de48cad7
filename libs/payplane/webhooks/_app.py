from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from aiohttp import web
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider

from ._signature import SIGNATURE_HEADER, SignatureError, verify_signature

__all__ = ["MAX_DEPTH", "Publish", "create_webhook_app"]

log = logging.getLogger("payplane.webhooks")

# (event id, event type, raw body) -> returns once the event is durably stored.
Publish = Callable[[str, str, bytes], Awaitable[None]]

# Stripe's events nest a handful of levels (event, data, object, a list, its items...); far
# deeper is not an event, and would exhaust a recursive parser further down the line.
MAX_DEPTH = 32
# Event ids become message ids and types become subject tokens: keep both plain.
_EVENT_ID = re.compile(r"^[A-Za-z0-9_\-]{1,255}$")
_EVENT_TYPE = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")


def create_webhook_app(
    secrets: Sequence[str],
    publish: Publish,
    *,
    path: str = "/webhooks/stripe",
    tolerance_s: float = 300,
    max_body_bytes: int = 256 * 1024,
    publish_timeout_s: float = 10.0,
    clock: Callable[[], float] = time.time,
    tracer_provider: TracerProvider | None = None,
) -> web.Application:
    """The ingress for one Stripe endpoint. Several secrets are accepted during a roll."""
    secrets = [s for s in secrets if s]
    if not secrets:
        raise ValueError("create_webhook_app needs at least one endpoint secret")
    tracer = trace.get_tracer("payplane.webhooks", tracer_provider=tracer_provider)

    async def receive(request: web.Request) -> web.Response:
        with tracer.start_as_current_span(
            f"POST {path}",
            kind=SpanKind.SERVER,
            attributes={"http.request.method": "POST", "url.path": path},
        ) as span:
            response = await _receive(request)
            span.set_attribute("http.response.status_code", response.status)
            if response.status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            return response

    async def _receive(request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > max_body_bytes:
            log.warning("webhook refused: body of %d bytes over the limit", request.content_length)
            return _answer(413, "body too large")
        try:
            raw = await request.read()  # client_max_size bounds chunked bodies too
        except web.HTTPRequestEntityTooLarge:
            log.warning("webhook refused: body over the limit")
            return _answer(413, "body too large")

        header = request.headers.get(SIGNATURE_HEADER)
        if not header:
            log.warning("webhook refused: no %s header", SIGNATURE_HEADER)
            return _answer(400, "missing signature")
        try:
            verify_signature(raw, header, secrets, tolerance_s=tolerance_s, now=clock())
        except SignatureError as exc:
            log.warning("webhook refused: %s", exc)
            return _answer(400, "invalid signature")

        parsed = _event_id_and_type(raw)
        if isinstance(parsed, str):
            # Signed, so from Stripe or whoever holds the secret, yet nothing a consumer could
            # apply: refused (Stripe retries a 400, and a human sees it in this log line).
            log.warning("webhook refused: signed body is not a Stripe event (%s)", parsed)
            return _answer(400, "not a Stripe event")
        event_id, event_type = parsed
        trace.get_current_span().set_attributes(
            {"stripe.event.id": event_id, "stripe.event.type": event_type}
        )
        try:
            async with asyncio.timeout(publish_timeout_s):
                await publish(event_id, event_type, raw)
        except Exception as exc:  # any failure: Stripe must retry, so no 2xx
            log.error("webhook %s (%s) not published: %s", event_id, event_type, type(exc).__name__)
            return _answer(503, "try again")
        log.info("webhook %s (%s) published", event_id, event_type)
        return _answer(200, "received")

    app = web.Application(client_max_size=max_body_bytes)
    app.router.add_post(path, receive)
    return app


def _answer(status: int, message: str) -> web.Response:
    return web.json_response({"status": message}, status=status)


def _event_id_and_type(raw: bytes) -> tuple[str, str] | str:
    """(event id, event type) of a body shaped like a Stripe event, or why it is not one.

    The shape every consumer relies on: an object with a plain id and type, `object` "event",
    an integer `created`, and `data.object` an object (with a string `id` and `object` when
    present), nested at most MAX_DEPTH deep.
    """
    try:
        event = json.loads(raw)
    except RecursionError:
        return "nested too deep"
    except ValueError:  # not JSON, not UTF-8, or a number beyond the digit limit
        return "not JSON"
    if not isinstance(event, dict):
        return "not an object"
    if _depth(event) > MAX_DEPTH:
        return f"nested deeper than {MAX_DEPTH}"
    event_id, event_type = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not _EVENT_ID.match(event_id):
        return "no plain id"
    if (
        not isinstance(event_type, str)
        or len(event_type) > 255
        or not _EVENT_TYPE.match(event_type)
    ):
        return "no plain type"
    if event.get("object", "event") != "event":
        return "object is not event"
    created = event.get("created", 0)
    if not isinstance(created, int) or isinstance(created, bool) or not 0 <= created < 2**63:
        return "created is not a Unix time"
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        return "data.object is not an object"
    obj = data["object"]
    for key in ("id", "object"):
        if key in obj and not isinstance(obj[key], str):
            return f"data.object.{key} is not a string"
    if not isinstance(data.get("previous_attributes", {}), dict):
        return "data.previous_attributes is not an object"
    return event_id, event_type


def _depth(value: Any) -> int:
    """How deep JSON containers nest in `value`, walked without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Iterable[Any] = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest
