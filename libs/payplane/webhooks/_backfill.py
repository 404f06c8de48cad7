from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import nats.js.errors
import stripe
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from payplane.stripe_gateway import Gateway, Lane

from ._app import Publish, _event_id_and_type

__all__ = [
    "MAX_TYPES_PER_LIST",
    "BackfillCursor",
    "BackfillResult",
    "KeyValueCursor",
    "WebhookBackfill",
    "backfill_events",
]

log = logging.getLogger("payplane.webhooks.backfill")

# Stripe's `types` filter takes at most 20 values; longer lists are listed in groups.
MAX_TYPES_PER_LIST = 20


@dataclass(frozen=True)
class BackfillResult:
    since: int  # the window listed, unix seconds, both ends included
    until: int
    listed: int  # events Stripe returned for the window
    published: int  # handed to `publish` (JetStream drops the ones it already holds)


def _epoch(value: int | float | datetime) -> int:
    return int(value.timestamp()) if isinstance(value, datetime) else int(value)


async def backfill_events(
    gateway: Gateway,
    publish: Publish,
    event_types: Sequence[str],
    *,
    since: int | float | datetime,
    until: int | float | datetime | None = None,
    only_undelivered: bool = False,
    page_size: int = 100,
) -> BackfillResult:
    """List Stripe's events of `event_types` created in [since, until] (`GET /v1/events`,
    Stripe keeps 30 days) and hand each to `publish` exactly as the webhook ingress does:
    `(event id, type, JSON body)`, so the stream's `Nats-Msg-Id` = event id drops those it
    holds already and the consumer's inbox skips those it applied. `only_undelivered` keeps
    to events some webhook endpoint has not acknowledged (`delivery_success=false`: failed,
    or still being retried). On the gateway's BACKGROUND lane; for an operator's date range
    too. A failing call raises (the gateway's errors) after what was published so far."""
    if not event_types:
        raise ValueError("backfill_events needs the service's event types")
    start = _epoch(since)
    end = _epoch(until) if until is not None else int(time.time())
    types = sorted(set(event_types))
    listed = published = 0
    for i in range(0, len(types), MAX_TYPES_PER_LIST):
        group = types[i : i + MAX_TYPES_PER_LIST]
        after: str | None = None
        while True:
            params: dict[str, Any] = {
                "limit": page_size,
                "types": group,
                "created": {"gte": start, "lte": end},
            }
            if only_undelivered:
                params["delivery_success"] = False
            if after is not None:
                params["starting_after"] = after
            page = await _list(gateway, params)
            events: list[dict[str, Any]] = list(page.get("data") or [])
            listed += len(events)
            for event in events:
                raw = json.dumps(event, separators=(",", ":")).encode()
                parsed = _event_id_and_type(raw)
                if parsed is None:
                    log.warning("backfill skipped a listed event without a usable id/type")
                    continue
                await publish(parsed[0], parsed[1], raw)
                published += 1
            if not page.get("has_more") or not events:
                break
            after = str(events[-1]["id"])
    return BackfillResult(since=start, until=end, listed=listed, published=published)


async def _list(gateway: Gateway, params: dict[str, Any]) -> dict[str, Any]:
    async def call(client: stripe.StripeClient, options: stripe.RequestOptions) -> Any:
        return await client.v1.events.list_async(params=params, options=options)  # type: ignore[arg-type]

    page = await gateway.call("events.list", call, idempotency_key=None, lane=Lane.BACKGROUND)
    data: dict[str, Any] = page.to_dict() if hasattr(page, "to_dict") else dict(page)
    return data


async def _wall_clock() -> float:
    return time.time()


class BackfillCursor(Protocol):
    """Where a periodic backfill remembers the end of the last window it covered."""

    async def load(self) -> int | None: ...

    async def save(self, until: int) -> None: ...


class KeyValueCursor:
    """A cursor in a NATS key-value bucket, shared by every replica of the service (a
    replica that starts picks up where the others got to)."""

    def __init__(self, js: JetStreamContext, key: str, bucket: str = "payplane_backfill") -> None:
        self._js = js
        self._key = key
        self._bucket = bucket
        self._kv: KeyValue | None = None

    async def _store(self) -> KeyValue:
        if self._kv is None:
            try:
                self._kv = await self._js.key_value(self._bucket)
            except nats.js.errors.BucketNotFoundError:
                self._kv = await self._js.create_key_value(bucket=self._bucket, history=1)
        return self._kv

    async def load(self) -> int | None:
        kv = await self._store()
        try:
            entry = await kv.get(self._key)
        except nats.js.errors.KeyNotFoundError:
            return None
        except Exception:
            self._kv = None  # the bucket may be gone with a lost store: look it up again
            raise
        try:
            return int((entry.value or b"").decode())
        except ValueError:
            return None

    async def save(self, until: int) -> None:
        kv = await self._store()
        try:
            await kv.put(self._key, str(int(until)).encode())
        except Exception:
            self._kv = None
            raise


class WebhookBackfill:
    """Recovers Stripe events whose webhooks never got through (the endpoint down beyond
    Stripe's retries, a network partition): every `interval_s`, lists the service's event
    types not yet delivered to every endpoint (`delivery_success=false`) created since the
    cursor (minus `overlap_s`, for clock skew; at most `lookback_s` back, Stripe's 3 days of
    retries by default) up to `settle_s` ago (younger ones are still on their first
    delivery), publishes them as the ingress would, and moves the cursor. `clock` is Stripe's
    clock (events are stamped with it: the wall clock, unless an emulator's was advanced).
    Several replicas may run it: they share a KeyValueCursor, and a duplicate publish is
    dropped by JetStream or the consumer's inbox. A failed run is logged and retried at the
    next interval."""

    def __init__(
        self,
        gateway: Gateway,
        publish: Publish,
        event_types: Sequence[str],
        *,
        cursor: BackfillCursor | None = None,
        interval_s: float = 300.0,
        lookback_s: float = 3 * 86_400.0,
        overlap_s: float = 600.0,
        settle_s: float = 30.0,
        clock: Callable[[], Awaitable[float]] | None = None,
    ) -> None:
        if interval_s <= 0 or lookback_s <= 0 or overlap_s < 0 or settle_s < 0:
            raise ValueError("need interval_s > 0, lookback_s > 0, overlap_s and settle_s >= 0")
        self._gateway = gateway
        self._publish = publish
        self._types = list(event_types)
        self._cursor = cursor
        self._interval_s = interval_s
        self._lookback_s = lookback_s
        self._overlap_s = overlap_s
        self._settle_s = settle_s
        self._clock = clock or _wall_clock
        self._memory: int | None = None  # the cursor when none is given, or it cannot be read
        self._rng = random.Random()
        self._stopping = asyncio.Event()
        self.last: BackfillResult | None = None

    async def run_once(self) -> BackfillResult:
        now = int(await self._clock())
        stored = self._memory
        if self._cursor is not None:
            stored = await self._cursor.load()
        oldest = now - int(self._lookback_s)
        since = oldest if stored is None else max(oldest, stored - int(self._overlap_s))
        until = now - int(self._settle_s)
        result = await backfill_events(
            self._gateway,
            self._publish,
            self._types,
            since=since,
            until=max(since, until),
            only_undelivered=True,
        )
        self._memory = result.until
        if self._cursor is not None:
            await self._cursor.save(result.until)
        if result.published:
            log.warning("backfill published %d undelivered Stripe event(s) created %d..%d",
                        result.published, result.since, result.until)  # fmt: skip
        self.last = result
        return result

    async def run(self) -> None:
        """Run every `interval_s` (jittered by 10 %, so replicas spread out) until `stop()`."""
        self._stopping.clear()
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except Exception as exc:
                log.warning("webhook backfill failed: %r; next try in %.0fs", exc, self._interval_s)
            wait = self._interval_s * (0.9 + 0.2 * self._rng.random())
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=wait)
            except TimeoutError:
                pass

    def stop(self) -> None:
        self._stopping.set()
