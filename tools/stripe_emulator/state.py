"""The emulator's state and the context every handler runs in.

Handlers are synchronous and run on the event loop, so each one is atomic: no two requests
interleave inside a handler. Anything that waits (injected latency, lock waits, webhook
delivery) happens in `app` around the handler, never inside it.
"""

from __future__ import annotations

import heapq
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import ids
from .config import Config
from .errors import missing
from .store import Obj, Store

__all__ = ["Ctx", "Emulator", "after_event", "on_restore", "timer"]

TimerFn = Callable[["Emulator", Any], None]
_TIMERS: dict[str, TimerFn] = {}
RestoreFn = Callable[["Emulator"], None]
_RESTORERS: list[RestoreFn] = []
EventHook = Callable[["Emulator", Obj], None]
Job = Callable[[], bool]  # one slice of background work; True when finished


def timer(name: str) -> Callable[[TimerFn], TimerFn]:
    """Register a function run when emulator time reaches a scheduled moment."""

    def register(fn: TimerFn) -> TimerFn:
        _TIMERS[name] = fn
        return fn

    return register


_AFTER_EVENT: list[EventHook] = []


def after_event(fn: EventHook) -> EventHook:
    """Register a reaction run after each event is stored (see `Emulator.emit`)."""
    _AFTER_EVENT.append(fn)
    return fn


def on_restore(fn: RestoreFn) -> RestoreFn:
    """Register a function that rebuilds derived state after loading a SQLite store
    (balances, pending timers): objects persist, in-memory bookkeeping is recomputed."""
    _RESTORERS.append(fn)
    return fn


@dataclass
class Ctx:
    em: Emulator
    account: str  # the account the request acts as (platform or a connected account)
    request_id: str | None = None
    idempotency_key: str | None = None
    expand: list[str] = field(default_factory=list)
    # A test clock: objects bound to one live on its frozen time, not the emulator's.
    clock: str | None = None

    @property
    def store(self) -> Store:
        return self.em.store

    @property
    def config(self) -> Config:
        return self.em.config

    @property
    def now(self) -> int:
        if self.clock is None:
            return self.em.now()
        return self.em.clock_time(self.clock)

    def on_clock(self, clock: str | None) -> Ctx:
        """This context on a test clock's time (or back on the emulator's with None)."""
        if clock == self.clock:
            return self
        return Ctx(self.em, self.account, self.request_id, self.idempotency_key, self.expand, clock)

    @property
    def is_platform(self) -> bool:
        return self.account == self.em.config.platform_account

    def get(self, obj_id: str, kind: str, label: str | None = None, param: str = "id") -> Obj:
        """Load an object of this account or answer Stripe's 404."""
        obj = self.em.store.get(obj_id, self.account, kind) if isinstance(obj_id, str) else None
        if obj is None:
            raise missing(label or kind, str(obj_id), param)
        return obj

    def find(self, obj_id: str | None, kind: str) -> Obj | None:
        if not obj_id:
            return None
        return self.em.store.get(obj_id, self.account, kind)

    def insert(self, obj: Obj, index: tuple[str, ...] = ()) -> Obj:
        return self.em.store.insert(self.account, obj, index)

    def save(self, obj: Obj) -> Obj:
        return self.em.store.save(obj)

    def emit(self, type_: str, obj: Obj, previous: dict[str, Any] | None = None) -> Obj:
        return self.em.emit(
            self.account, type_, obj, previous, self.request_id, self.idempotency_key
        )

    def new_id(self, prefix: str, length: int = 24) -> str:
        return ids.new_id(prefix, length)


class Emulator:
    def __init__(self, config: Config | None = None, store_path: str | None = None) -> None:
        self.config = config or Config()
        self.store = Store(store_path)
        self.rng = random.Random(self.config.seed)
        ids.seed(self.config.seed)
        self.event_hooks: list[EventHook] = []
        # Run after an event is stored: reactions to it (an invoice paid by its PaymentIntent)
        # emit their own events after it, in Stripe's order.
        self.after_event_hooks: list[EventHook] = list(_AFTER_EVENT)
        self.jobs: deque[Job] = deque()  # sliced background work the server's ticker runs
        self.clock_times: dict[str, int] = {}  # test clock -> frozen time
        self._clock_timers: dict[str, list[tuple[float, int, str, Any]]] = {}
        self.reset_hooks: list[Callable[[Emulator], None]] = []
        self._offset = 0.0
        self._timers: list[tuple[float, int, str, Any]] = []
        self._timer_seq = 0
        self.balances: dict[tuple[str, str], dict[str, int]] = {}
        if len(self.store):
            if self.config.seed is not None:
                # A restored store already holds the ids this seed starts with: go on from a
                # sequence of its own (still reproducible) instead of minting them again.
                ids.seed_from(f"{self.config.seed}:{len(self.store)}")
            self._offset = float(self.store.get_meta("clock_offset") or 0.0)
            from . import resources  # noqa: F401  (restorers register on import)

            for restore in _RESTORERS:
                restore(self)
        self.ensure_platform()

    # -- clock --------------------------------------------------------------------------------
    def now(self) -> int:
        return int(time.time() + self._offset)

    def now_f(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> int:
        """Move emulator time forward and run everything that became due."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        target = self.now_f() + seconds
        # Step through each due moment so what a timer records (a payout's date, a balance
        # transaction's `created`) carries the time it was due, not the end of the jump.
        while self._timers and self._timers[0][0] <= target:
            self._offset = max(self._offset, self._timers[0][0] - time.time())
            self.run_due()
        self._offset = max(self._offset, target - time.time())
        self.store.set_meta("clock_offset", repr(self._offset))
        self.run_due()
        return self.now()

    def schedule(self, at: float, name: str, arg: Any = None, clock: str | None = None) -> None:
        """Run timer `name` with `arg` at `at`: emulator time, or a test clock's time."""
        if name not in _TIMERS:
            raise KeyError(name)
        self._timer_seq += 1
        heap = self._timers if clock is None else self._clock_timers.setdefault(clock, [])
        heapq.heappush(heap, (at, self._timer_seq, name, arg))

    # -- test clocks --------------------------------------------------------------------------
    def clock_time(self, clock: str) -> int:
        return self.clock_times.get(clock, 0)

    def next_clock_timer(self, clock: str) -> float | None:
        heap = self._clock_timers.get(clock)
        return heap[0][0] if heap else None

    def step_clock(self, clock: str, target: int, budget_s: float) -> bool:
        """Move a test clock towards `target`, running what falls due on the way, each at its
        own moment, for at most `budget_s` of real time. True once the clock stands at target.
        """
        heap = self._clock_timers.get(clock, [])
        deadline = time.perf_counter() + budget_s
        while heap and heap[0][0] <= target:
            at, _, name, arg = heapq.heappop(heap)
            self.clock_times[clock] = max(self.clock_times.get(clock, 0), int(at))
            _TIMERS[name](self, arg)
            if time.perf_counter() > deadline:
                self.store.seal()  # one group for many timers' events: fewer, better seals
                return False
        self.clock_times[clock] = max(self.clock_times.get(clock, 0), target)
        self.store.seal()
        return True

    def drop_clock(self, clock: str) -> None:
        self.clock_times.pop(clock, None)
        self._clock_timers.pop(clock, None)

    def run_jobs(self) -> bool:
        """Give each background job one slice; True while some are left."""
        for _ in range(len(self.jobs)):
            job = self.jobs.popleft()
            if not job():
                self.jobs.append(job)
        return bool(self.jobs)

    def run_due(self) -> int:
        ran = 0
        while self._timers and self._timers[0][0] <= self.now_f():
            _, _, name, arg = heapq.heappop(self._timers)
            _TIMERS[name](self, arg)
            ran += 1
        if ran:
            self.store.seal()
        return ran

    # -- life cycle ---------------------------------------------------------------------------
    def reset(self) -> None:
        self.store.clear()
        self._timers.clear()
        self._clock_timers.clear()
        self.clock_times.clear()
        self.jobs.clear()
        self.balances.clear()
        self._offset = 0.0
        for hook in self.reset_hooks:
            hook(self)
        self.ensure_platform()

    def ensure_platform(self) -> None:
        acct = self.config.platform_account
        if self.store.get(acct) is None:
            from .resources.accounts import platform_account

            self.store.insert(acct, platform_account(self))

    def ctx(self, account: str | None = None) -> Ctx:
        return Ctx(self, account or self.config.platform_account)

    # -- events -------------------------------------------------------------------------------
    def emit(
        self,
        account: str,
        type_: str,
        obj: Obj,
        previous: dict[str, Any] | None = None,
        request_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Obj:
        data: dict[str, Any] = {"object": obj}
        if previous is not None:
            data["previous_attributes"] = previous
        event: Obj = {
            "id": ids.new_id("evt"),
            "object": "event",
            "account": None if account == self.config.platform_account else account,
            "api_version": "2025-04-30.basil",
            "context": None,
            "created": self.now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": 0,
            "request": {"id": request_id, "idempotency_key": idempotency_key},
            "type": type_,
        }
        if event["account"] is None:
            del event["account"]
        for hook in self.event_hooks:
            hook(self, event)
        self.store.insert(account, event, ("type",))
        for hook in self.after_event_hooks:
            hook(self, event)
        return event
