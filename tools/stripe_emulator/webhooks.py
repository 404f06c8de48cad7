"""Webhook delivery: signed POSTs of events to the endpoints that subscribed to them.

An event hook (run by `Emulator.emit` before the event is stored) picks the enabled
endpoints whose `enabled_events` match: the account's own endpoints, plus the platform's
`connect` endpoints for a connected account's event. It counts them into the event's
`pending_webhooks` and queues one delivery each. Nothing is sent inside the request handler:
a runner task on the emulator's loop takes deliveries off the queue and starts at most
`MAX_CONCURRENT` sends at a time over one aiohttp session, at most `PER_ENDPOINT` of them to
one endpoint (the rest wait their turn), so a slow endpoint cannot starve the others.

Each attempt is signed afresh as Stripe signs (`Stripe-Signature: t=<unix>,v1=<hex>`, the
HMAC-SHA256 of `"<t>.<body>"` under the endpoint's `whsec_` secret, t from the emulator
clock). A 2xx within `webhook_timeout_s` is a success; any other status (3xx included), a
timeout or a connection error is retried after min(base * factor**(n-1), max) real seconds,
up to `webhook_max_attempts`. Once delivered or given up, the stored event's
`pending_webhooks` goes down by one. A reset drops everything queued or waiting to retry.

Faults (read at delivery time from `app.faults`): webhook_duplicate_rate sends a delivery
twice; webhook_shuffle gathers a short batch and sends it in random order; webhook_delay_ms
holds each delivery back; webhook_outage fails attempts to the named endpoints ("*": all)
without connecting, logged as an outage and retried on schedule.

Emulator-only calls: `GET /_emulator/webhook_endpoints/{id}/deliveries` (the attempt log,
optionally `?event=evt_...`) and `POST /_emulator/webhook_endpoints/{id}/redeliver`
(`{"event": "evt_..."}`, or without it every event given up on for that endpoint).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections import deque
from dataclasses import dataclass, replace
from hashlib import sha256
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit
from weakref import WeakKeyDictionary

import aiohttp
import orjson

from .errors import InvalidRequest, missing
from .router import control
from .state import Emulator
from .store import Obj

if TYPE_CHECKING:
    from .app import EmulatorApp

__all__ = [
    "CONNECT_FIELD",
    "SECRET_FIELD",
    "WebhookDispatcher",
    "delivery_failed",
    "endpoint_connect",
    "endpoint_matches",
    "endpoint_secret",
    "sign",
]

log = logging.getLogger("stripe_emulator.webhooks")

SECRET_FIELD = "_secret"  # internal fields of a stored webhook endpoint, never answered
CONNECT_FIELD = "_connect"
USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
MAX_CONCURRENT = 64  # sends in flight at once, whatever the endpoints do
PER_ENDPOINT = 16  # ... and to one endpoint, so a slow one cannot hold every slot
LOG_SIZE = 1000  # attempts kept per endpoint
SHUFFLE_QUIET_S = 0.1  # a shuffled batch closes after this long without a new delivery
SHUFFLE_MAX_HOLD_S = 1.0  # ... or this long after it opened
SHUFFLE_BATCH = 64

_REGISTRY: WeakKeyDictionary[Emulator, WebhookDispatcher] = WeakKeyDictionary()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """Stripe's signature header for one attempt."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def endpoint_secret(endpoint: Obj) -> str:
    return str(endpoint.get(SECRET_FIELD, ""))


def endpoint_connect(endpoint: Obj) -> bool:
    return bool(endpoint.get(CONNECT_FIELD))


def endpoint_matches(endpoint: Obj, event_type: str) -> bool:
    if endpoint.get("status") != "enabled":
        return False
    wanted = endpoint.get("enabled_events") or []
    return "*" in wanted or event_type in wanted


def delivery_failed(em: Emulator, event_id: str) -> bool:
    """Whether some endpoint gave up on this event (for `delivery_success=false`)."""
    dispatcher = _REGISTRY.get(em)
    return dispatcher is not None and bool(dispatcher.failed.get(event_id))


@dataclass
class Delivery:
    event_id: str
    event_type: str
    endpoint_id: str
    body: bytes
    generation: int
    attempt: int = 0  # attempts made so far
    counts: bool = True  # settles one of the event's pending_webhooks
    retries: bool = True
    manual: bool = False  # a redelivery asked for through the control API
    duplicate: bool = False  # the extra copy sent by the duplicate fault
    held: bool = False  # the delay fault was applied already
    rolled: bool = False  # the duplicate fault had its chance already


class WebhookDispatcher:
    def __init__(self, app: EmulatorApp) -> None:
        self.app = app
        self.em = app.em
        self.log: dict[str, deque[dict[str, Any]]] = {}  # endpoint id -> attempts
        self.failed: dict[str, set[str]] = {}  # event id -> endpoints that gave up
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue()
        self._sem = asyncio.Semaphore(MAX_CONCURRENT)
        self._session: aiohttp.ClientSession | None = None
        self._runner: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self.per_endpoint = PER_ENDPOINT
        self._busy: dict[str, int] = {}  # endpoint id -> sends in flight
        self._parked: dict[str, deque[Delivery]] = {}  # waiting for a slot of their endpoint
        self._timers: set[asyncio.TimerHandle] = set()
        self._generation = 0
        self._seq = 0
        self._stopping = False

    # -- life cycle -----------------------------------------------------------------------
    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=MAX_CONCURRENT)
        self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        self.em.event_hooks.append(self._on_event)
        self.em.reset_hooks.append(self._on_reset)
        _REGISTRY[self.em] = self
        self._runner = asyncio.create_task(self._run())

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.em.event_hooks.remove(self._on_event)
        with contextlib.suppress(ValueError):
            self.em.reset_hooks.remove(self._on_reset)
        if _REGISTRY.get(self.em) is self:
            del _REGISTRY[self.em]
        self._stopping = True
        self._generation += 1
        self._cancel_timers()
        tasks = [t for t in (self._runner, *self._inflight) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._runner = None
        self._inflight.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _on_reset(self, _em: Emulator) -> None:
        self._generation += 1
        self._cancel_timers()
        while not self._queue.empty():
            self._queue.get_nowait()
        self._parked.clear()
        self.log.clear()
        self.failed.clear()

    def _cancel_timers(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()

    # -- choosing endpoints (inside emit: synchronous, before the event is stored) ---------
    def _endpoints(self, account: str) -> list[Obj]:
        store = self.em.store
        found = (store.get(i) for i in store.iter_ids(account, "webhook_endpoint", False))
        return [ep for ep in found if ep is not None]

    def _on_event(self, em: Emulator, event: Obj) -> None:
        platform = em.config.platform_account
        account = event.get("account") or platform
        type_ = str(event.get("type"))
        targets = [ep for ep in self._endpoints(account) if not endpoint_connect(ep)]
        if account != platform:
            targets += [ep for ep in self._endpoints(platform) if endpoint_connect(ep)]
        targets = [ep for ep in targets if endpoint_matches(ep, type_)]
        if not targets:
            return
        event["pending_webhooks"] = int(event.get("pending_webhooks") or 0) + len(targets)
        body = orjson.dumps(event)
        for ep in targets:
            self._queue.put_nowait(
                Delivery(str(event["id"]), type_, str(ep["id"]), body, self._generation)
            )

    def redeliver(self, endpoint_id: str, event: Obj) -> None:
        """Send a stored event again (one attempt; pending_webhooks is not touched)."""
        self._queue.put_nowait(
            Delivery(
                str(event["id"]), str(event.get("type")), endpoint_id, orjson.dumps(event),
                self._generation, counts=False, retries=False, manual=True,
            )
        )  # fmt: skip

    # -- the runner -----------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            if self.app.faults.webhook_shuffle:
                await self._gather(batch)
                self.em.rng.shuffle(batch)
            for delivery in batch:
                try:
                    await self._launch(delivery)
                except asyncio.CancelledError:
                    raise
                except Exception:  # a bug here must not stop every later delivery
                    log.exception("webhook dispatch failed")

    async def _gather(self, batch: list[Delivery]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SHUFFLE_MAX_HOLD_S
        while len(batch) < SHUFFLE_BATCH and loop.time() < deadline:
            await asyncio.sleep(SHUFFLE_QUIET_S)
            before = len(batch)
            while len(batch) < SHUFFLE_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            if len(batch) == before:
                return

    async def _launch(self, delivery: Delivery) -> None:
        if delivery.generation != self._generation:
            return
        faults = self.app.faults
        if not delivery.held and faults.webhook_delay_ms > 0:
            delivery.held = True
            self._later(faults.webhook_delay_ms / 1000.0, delivery)
            return
        if not delivery.rolled:
            delivery.rolled = True
            rate = faults.webhook_duplicate_rate
            if delivery.counts and rate > 0 and self.em.rng.random() < rate:
                twin = replace(delivery, counts=False, retries=False, duplicate=True, held=True)
                self._queue.put_nowait(twin)
        endpoint_id = delivery.endpoint_id
        if self._busy.get(endpoint_id, 0) >= self.per_endpoint or endpoint_id in self._parked:
            self._parked.setdefault(endpoint_id, deque()).append(delivery)  # first come, first out
            return
        self._busy[endpoint_id] = self._busy.get(endpoint_id, 0) + 1
        try:
            await self._sem.acquire()
        except BaseException:
            self._release(endpoint_id)
            raise
        self._start(delivery, acquire=False)

    def _start(self, delivery: Delivery, acquire: bool) -> None:
        task = asyncio.create_task(self._attempt(delivery, acquire))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    def _later(self, delay: float, delivery: Delivery) -> None:
        loop = asyncio.get_running_loop()
        handles: list[asyncio.TimerHandle] = []

        def fire() -> None:
            for handle in handles:
                self._timers.discard(handle)
            if delivery.generation == self._generation:
                self._queue.put_nowait(delivery)

        handle = loop.call_later(max(0.0, delay), fire)
        handles.append(handle)
        self._timers.add(handle)

    async def _attempt(self, delivery: Delivery, acquire: bool) -> None:
        if acquire:  # a parked delivery inherited its endpoint's slot; it needs a global one
            try:
                await self._sem.acquire()
            except BaseException:
                self._release(delivery.endpoint_id)
                raise
        try:
            await self._send(delivery)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook delivery failed unexpectedly")
        finally:
            self._sem.release()
            self._release(delivery.endpoint_id)

    def _release(self, endpoint_id: str) -> None:
        """A send to this endpoint ended: hand its slot to the next parked delivery, if any."""
        parked = self._parked.get(endpoint_id)
        while parked and not self._stopping:
            delivery = parked.popleft()
            if not parked:
                del self._parked[endpoint_id]
            if delivery.generation == self._generation:
                self._start(delivery, acquire=True)
                return
        busy = self._busy.get(endpoint_id, 0) - 1
        if busy > 0:
            self._busy[endpoint_id] = busy
        else:
            self._busy.pop(endpoint_id, None)

    # -- one attempt ----------------------------------------------------------------------
    async def _send(self, d: Delivery) -> None:
        endpoint = self.em.store.get(d.endpoint_id, kind="webhook_endpoint")
        if endpoint is None or (endpoint.get("status") != "enabled" and not d.manual):
            self._settle(d, failed=False)  # deleted or disabled: nothing more to send
            return
        cfg = self.em.config
        d.attempt += 1
        self._seq += 1
        entry: dict[str, Any] = {
            "id": f"whatt_{self._seq}",
            "event": d.event_id,
            "type": d.event_type,
            "attempt": d.attempt,
            "url": _redact_url(str(endpoint.get("url"))),
            "status": None,
            "error": None,
            "outcome": "failed",
            "manual": d.manual,
            "duplicate": d.duplicate,
            "delivered_at": None,
            "next_retry_at": None,
        }
        if self.app.faults.endpoint_down(d.endpoint_id):
            entry["error"] = "outage"
        else:
            status, error = await self._post(endpoint, d.body, float(cfg.webhook_timeout_s))
            entry["status"], entry["error"] = status, error
        if d.generation != self._generation:
            return  # reset while the request was out: the old world is gone
        entry["delivered_at"] = round(self.em.now_f(), 3)
        status = entry["status"]
        ok = entry["error"] is None and isinstance(status, int) and 200 <= status < 300
        if ok:
            entry["outcome"] = "succeeded"
            self._settle(d, failed=False)
        elif d.retries and d.attempt < int(cfg.webhook_max_attempts):
            base, factor = float(cfg.webhook_retry_base_s), float(cfg.webhook_retry_factor)
            wait = min(base * factor ** (d.attempt - 1), float(cfg.webhook_retry_max_s))
            entry["next_retry_at"] = round(self.em.now_f() + wait, 3)
            self._later(wait, d)
        else:
            self._settle(d, failed=True)
        attempts = self.log.setdefault(d.endpoint_id, deque(maxlen=LOG_SIZE))
        attempts.append(entry)

    async def _post(
        self, endpoint: Obj, body: bytes, timeout_s: float
    ) -> tuple[int | None, str | None]:
        session = self._session
        if session is None:
            return None, "not_running"
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "Accept": "*/*; q=0.5, application/xml",
            "Cache-Control": "no-cache",
            "Stripe-Signature": sign(endpoint_secret(endpoint), body, self.em.now()),
        }
        try:
            async with session.post(
                str(endpoint.get("url")),
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
                allow_redirects=False,
            ) as resp:
                return resp.status, None
        except TimeoutError:
            return None, "timeout"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return None, f"connection_error: {type(exc).__name__}"

    def _settle(self, d: Delivery, failed: bool) -> None:
        if failed:
            if not d.duplicate:
                self.failed.setdefault(d.event_id, set()).add(d.endpoint_id)
        elif d.manual:
            gave_up = self.failed.get(d.event_id)
            if gave_up is not None:
                gave_up.discard(d.endpoint_id)
                if not gave_up:
                    del self.failed[d.event_id]
        if not d.counts:
            return
        event = self.em.store.get(d.event_id, kind="event")
        if event is not None:
            event["pending_webhooks"] = max(0, int(event.get("pending_webhooks") or 0) - 1)
            self.em.store.save(event)


def _redact_url(url: str) -> str:
    """The URL without any user:password part (the log never shows credentials)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ""
    with contextlib.suppress(ValueError):
        if parts.port is not None:
            netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


# -- emulator-only calls ------------------------------------------------------------------
def _dispatcher(app: EmulatorApp) -> WebhookDispatcher:
    dispatcher = app.services.get("webhooks")
    if not isinstance(dispatcher, WebhookDispatcher):
        raise InvalidRequest("Webhook delivery is not running.")
    return dispatcher


@control("GET", "/_emulator/webhook_endpoints/{id}/deliveries")
def list_deliveries(app: EmulatorApp, body: dict[str, Any], id: str) -> dict[str, Any]:
    dispatcher = _dispatcher(app)
    attempts = list(dispatcher.log.get(id, ()))
    if not attempts and app.em.store.get(id, kind="webhook_endpoint") is None:
        raise missing("webhook_endpoint", id)
    event = body.get("event")
    if event:
        attempts = [a for a in attempts if a["event"] == event]
    return {"object": "list", "data": attempts, "count": len(attempts)}


@control("POST", "/_emulator/webhook_endpoints/{id}/redeliver")
def redeliver(app: EmulatorApp, body: dict[str, Any], id: str) -> dict[str, Any]:
    dispatcher = _dispatcher(app)
    store = app.em.store
    endpoint = store.get(id, kind="webhook_endpoint")
    if endpoint is None:
        raise missing("webhook_endpoint", id)
    event_id = body.get("event")
    if event_id:
        event = store.get(str(event_id), kind="event")
        if event is None:
            raise missing("event", str(event_id), "event")
        if not _reaches(app, endpoint, event):
            raise InvalidRequest(
                f"Event {event_id} does not belong to an account {id} listens to.", param="event"
            )
        events = [event]
    else:
        wanted = sorted(e for e, eps in dispatcher.failed.items() if id in eps)
        events = [e for e in (store.get(i, kind="event") for i in wanted) if e is not None]
    for event in events:
        dispatcher.redeliver(id, event)
    ids = [str(e["id"]) for e in events]
    return {"object": "list", "data": ids, "count": len(ids)}


def _reaches(app: EmulatorApp, endpoint: Obj, event: Obj) -> bool:
    store = app.em.store
    owner = store.owner(str(endpoint["id"]))
    event_owner = store.owner(str(event["id"]))
    if endpoint_connect(endpoint):
        return owner == app.config.platform_account and event_owner != owner
    return owner == event_owner
