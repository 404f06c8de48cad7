"""Waking billing objects on time: on the emulator's clock, or on their test clock's.

A subscription or invoice that has something due (a renewal, a trial end, a finalization, a
retry) records the moment in `_wake` and schedules one timer for it on its own timeline. The
timer runs the object's `wake` only if `_wake` still names that moment, so rescheduling never
needs to cancel anything, and after a restart every timer is rebuilt from `_wake` alone.
"""

from __future__ import annotations

from collections.abc import Callable

from ..state import Ctx, Emulator, on_restore, timer
from ..store import Obj

__all__ = ["WAKERS", "clock_ctx", "set_wake"]

# object type -> what runs when it is due (registered by the lifecycle and invoicing modules)
WAKERS: dict[str, Callable[[Ctx, Obj], None]] = {}
_KINDS = ("subscription", "invoice")


def clock_ctx(ctx: Ctx, obj: Obj) -> Ctx:
    """The context on the object's own timeline."""
    return ctx.on_clock(obj.get("test_clock"))


def set_wake(ctx: Ctx, obj: Obj, at: int | None) -> None:
    """Wake `obj` at `at` (None: nothing due). The caller saves the object."""
    if obj.get("_wake") == at:
        return
    obj["_wake"] = at
    if at is not None:
        ctx.em.schedule(at, "billing.wake", (ctx.account, obj["id"], at), obj.get("test_clock"))


@timer("billing.wake")
def _wake(em: Emulator, arg: tuple[str, str, int]) -> None:
    account, obj_id, at = arg
    obj = em.store.get(obj_id, account)
    if obj is None or obj.get("_wake") != at:
        return  # rescheduled or gone since
    obj["_wake"] = None
    ctx = em.ctx(account).on_clock(obj.get("test_clock"))
    WAKERS[obj["object"]](ctx, obj)


@on_restore
def _restore(em: Emulator) -> None:
    for account in em.store.accounts_with("test_helpers.test_clock"):
        for cid in em.store.iter_ids(account, "test_helpers.test_clock"):
            clock = em.store.get(cid)
            if clock is not None:
                em.clock_times[cid] = int(clock["frozen_time"])
    for kind in _KINDS:
        for account in em.store.accounts_with(kind):
            for obj_id in em.store.iter_ids(account, kind, newest_first=False):
                obj = em.store.get(obj_id)
                if obj is not None and obj.get("_wake") is not None:
                    at = obj["_wake"]
                    em.schedule(at, "billing.wake", (account, obj_id, at), obj.get("test_clock"))
