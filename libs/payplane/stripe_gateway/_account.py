"""One Stripe account's rate limit, shared by every replica of every service through NATS KV.

Stripe counts requests per account. Each replica's gateway keeps a local token bucket
(`RateBudget`) whose cap is its *share* of the account's limit; this module keeps the shares
adding up to the limit:

- every member (one gateway in one process) puts its demand per lane into a JetStream
  key-value bucket once per heartbeat, under its own key;
- every member watches the bucket, so all members see the same demands, and computes the
  same allocation with `allocate()`: the capacity (limit x safety) goes to the interactive
  lane of every member first, then collection, payouts and background, each lane shared in
  proportion to demand when it cannot be met; what no lane wants is spread evenly so a new
  burst can start at once;
- a member not heard from for `ttl_s` is dropped from the view, so a dead replica's share
  returns to the others within seconds; a member that stops cleanly deletes its key;
- a member that cannot reach NATS (its own put fails, or its watch has not brought its own
  put back for `ttl_s`)
  falls back to a conservative share, `limit x fallback_fraction`, never the whole limit.

Views can differ for a heartbeat while members come and go; the safety margin covers that.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError
from nats.js.kv import KeyValue

from ._budget import RateBudget
from ._clock import Now, default_now
from ._config import Lane

__all__ = ["AccountBudget", "AccountBudgetConfig", "allocate", "member_id"]

log = logging.getLogger("payplane.stripe_gateway.account")

_LANES = tuple(sorted(set(Lane), key=int))


@dataclass(frozen=True)
class AccountBudgetConfig:
    """The account's limit and how replicas share it.

    `account_limit`: Stripe's limit for the account (100/s live, 25/s test mode).
    `safety`: the fraction of it the members hand out (the rest absorbs views that differ
    for a heartbeat and requests in flight when shares move).
    `min_share`: what any live member keeps even with no demand, so its first request
    never waits a whole heartbeat.
    """

    account_limit: float
    bucket: str = "payplane_stripe_budget"
    safety: float = 0.97
    heartbeat_s: float = 1.0
    ttl_s: float = 4.0
    fallback_fraction: float = 0.1
    min_share: float = 0.5

    def __post_init__(self) -> None:
        problems = []
        if self.account_limit <= 0:
            problems.append("account_limit must be > 0")
        if not 0 < self.safety <= 1:
            problems.append("safety must be in (0, 1]")
        if not 0 < self.fallback_fraction <= 1:
            problems.append("fallback_fraction must be in (0, 1]")
        if self.heartbeat_s <= 0 or self.ttl_s <= self.heartbeat_s:
            problems.append("heartbeat_s must be > 0 and ttl_s > heartbeat_s")
        if self.min_share < 0:
            problems.append("min_share must be >= 0")
        if problems:
            raise ValueError("invalid AccountBudgetConfig: " + "; ".join(problems))

    @property
    def capacity(self) -> float:
        return self.account_limit * self.safety

    @property
    def fallback_share(self) -> float:
        return self.account_limit * self.fallback_fraction


def member_id(service: str) -> str:
    """A key unique to this gateway in this process: service, host, pid and a random part."""
    host = socket.gethostname().replace(".", "-")[:40] or "host"
    return f"{service}.{host}.{os.getpid()}.{uuid.uuid4().hex[:8]}"


def allocate(
    capacity: float, demands: Mapping[str, Sequence[float]], min_share: float = 0.0
) -> dict[str, float]:
    """Split `capacity` (requests/s) among members by lane priority.

    `demands[member][lane]` is what the member wants on that lane (index = Lane value).
    Lanes are served in priority order; within a lane each member gets its demand, or a
    proportional part of what is left when the lane cannot be met. Capacity no lane wants is
    spread evenly. Every member gets at least `min_share` (scaled down if the floors alone
    would exceed the capacity). Deterministic: every member computes the same split from
    the same view, and the shares add up to `capacity`.
    """
    members = sorted(demands)
    if not members:
        return {}
    floor = min(min_share, capacity / (2 * len(members)))
    shares = dict.fromkeys(members, floor)
    left = capacity - floor * len(members)
    for lane in _LANES:
        wanted = {m: max(0.0, _lane(demands[m], lane)) for m in members}
        total = sum(wanted.values())
        if total <= 0:
            continue
        if total <= left:
            for m in members:
                shares[m] += wanted[m]
            left -= total
        else:
            for m in members:
                shares[m] += left * wanted[m] / total
            left = 0.0
            break
    if left > 0:
        for m in members:
            shares[m] += left / len(members)
    return shares


def _lane(demand: Sequence[float], lane: Lane) -> float:
    return float(demand[int(lane)]) if int(lane) < len(demand) else 0.0


class AccountBudget:
    """Keeps one gateway's `RateBudget` at its share of the account's limit."""

    def __init__(
        self,
        js: JetStreamContext,
        budget: RateBudget,
        config: AccountBudgetConfig,
        *,
        service: str,
        member: str | None = None,
        now: Now | None = None,
    ) -> None:
        self._js = js
        self._budget = budget
        self._config = config
        self.service = service
        self.member = member or member_id(service)
        self._now = now or default_now
        self._kv: KeyValue | None = None
        # member -> (demand per lane, when we last heard from it)
        self._view: dict[str, tuple[list[float], float]] = {}
        self._last_put_ok: float | None = None
        self._share = config.fallback_share
        self._own_seen: float | None = None
        self._watch_started: float | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        budget.set_limit(self._share)

    @property
    def share(self) -> float:
        """Requests/s this member may send now."""
        return self._share

    @property
    def degraded(self) -> bool:
        """True while the member cannot coordinate (it runs on the fallback share)."""
        return not self._coordinated()

    def members(self) -> dict[str, list[float]]:
        """The live members this one knows of, with their demand per lane (itself included)."""
        now = self._now()
        return {
            m: list(d) for m, (d, seen) in self._view.items() if now - seen <= self._config.ttl_s
        }

    async def start(self) -> None:
        """Begin heartbeating; returns at once (NATS may be down: the loop keeps trying)."""
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=f"stripe-budget-{self.service}")

    async def stop(self) -> None:
        """Stop and hand the share back now (delete our key) rather than after the ttl."""
        self._stopping.set()
        for task in (self._task, self._watch_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._kv is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._kv.delete(self.member), timeout=1.0)

    async def sync_once(self) -> float:
        """Publish our demand and recompute the share from the view; returns the share."""
        kv = await self._bucket()
        demand = self._budget.demand()
        mine = [demand[lane] for lane in _LANES]
        body = json.dumps({"service": self.service, "demand": mine}).encode()
        await kv.put(self.member, body)
        now = self._now()
        self._last_put_ok = now
        self._view[self.member] = (mine, now)
        if self._watch_task is None or self._watch_task.done() or self._watcher_stalled(now):
            await self._restart_watch(kv)
        return self._recompute()

    # -- internals ----------------------------------------------------------------------------

    def _coordinated(self) -> bool:
        """We can publish, and the watch still brings our own puts back (so it would bring
        everyone else's too): a silent watch must not make us think we are alone."""
        now = self._now()
        ttl = self._config.ttl_s
        return (
            self._last_put_ok is not None
            and now - self._last_put_ok <= ttl
            and self._own_seen is not None
            and now - self._own_seen <= ttl
        )

    def _watcher_stalled(self, now: float) -> bool:
        started = self._watch_started or now
        last = max(self._own_seen or 0.0, started)
        return now - last > self._config.ttl_s

    def _recompute(self) -> float:
        if not self._coordinated():
            share = self._config.fallback_share
        else:
            live = self.members()
            live.setdefault(self.member, [0.0] * len(_LANES))
            shares = allocate(self._config.capacity, live, self._config.min_share)
            share = shares[self.member]
        share = max(share, 0.01)
        if abs(share - self._share) > 1e-6:
            self._budget.set_limit(share)
            self._share = share
        return share

    async def _restart_watch(self, kv: KeyValue) -> None:
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watch_task
        self._watch_started = self._now()
        self._watch_task = asyncio.create_task(self._watch(kv), name="stripe-budget-watch")

    async def _watch(self, kv: KeyValue) -> None:
        """Every member's puts, as they happen. A member is live while its puts keep coming;
        one that stops (a crash) ages out of `members()` after `ttl_s`."""
        watcher = await kv.watchall()
        try:
            async for entry in watcher:
                if entry is None:
                    continue  # the end of the initial values
                now = self._now()
                key = entry.key
                if key == self.member:
                    self._own_seen = now
                    continue
                if entry.operation in ("DEL", "PURGE") or not entry.value:
                    self._view.pop(key, None)
                    continue
                try:
                    demand = [float(x) for x in json.loads(entry.value)["demand"]]
                except (ValueError, KeyError, TypeError):
                    log.warning("ignoring a malformed stripe budget entry %r", key[:80])
                    continue
                self._view[key] = (demand, now)
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()  # type: ignore[no-untyped-call]

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            try:
                self._kv = await self._js.key_value(self._config.bucket)
            except BucketNotFoundError:
                self._kv = await self._js.create_key_value(
                    bucket=self._config.bucket,
                    history=1,
                    ttl=max(self._config.ttl_s * 3, 10.0),
                    description="payplane: each Stripe gateway's demand, for account-wide shares",
                )
        return self._kv

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                timeout = max(2.0, self._config.heartbeat_s * 2)
                await asyncio.wait_for(self.sync_once(), timeout=timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._coordinated():
                    log.warning("stripe budget heartbeat failed: %r", exc)
                self._recompute()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._config.heartbeat_s)
