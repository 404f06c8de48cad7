"""Test clocks: simulated time for the customers bound to them and all they are billed.

Advancing is asynchronous, as on Stripe: the call answers `advancing`
(test_helpers.test_clock.advancing), then the emulator steps the clock through every moment
something falls due on it (renewals, trial ends, finalizations, retries, meter roll-ups),
each at its own time, in slices between requests, and finally sets it `ready` at the target
(test_helpers.test_clock.ready). A clock moves forward only: at most two intervals of its
shortest subscription, or two years without one. Deleting a clock deletes the customers,
subscriptions, invoices and invoice items bound to it.
"""

from __future__ import annotations

import logging

from ..billing import lifecycle
from ..billing.calendar import shift
from ..errors import invalid
from ..params import Params
from ..router import route
from ..state import Ctx, Emulator
from ..store import Obj
from .common import list_response

__all__: list[str] = []

log = logging.getLogger("stripe_emulator.test_clocks")
_KIND = "test_helpers.test_clock"
_DELETES_AFTER_S = 30 * 86_400
_SLICE_S = 0.02  # real time per slice of an advance before requests get a turn


@route("POST", "/v1/test_helpers/test_clocks", perm="test_clocks")
def create(ctx: Ctx, p: Params) -> Obj:
    frozen = p.integer("frozen_time", required=True, min=0)
    name = p.string("name", max_len=300)
    customer = p.string("customer")
    p.done()
    assert frozen is not None
    cus = None
    if customer is not None:
        cus = ctx.get(customer, "customer", param="customer")
        if cus["test_clock"] is not None:
            raise invalid("This customer is already attached to a test clock.", param="customer")
        found, _ = ctx.store.page(
            ctx.account, "subscription", limit=1, where=("customer", customer)
        )
        if found:
            raise invalid(
                "Only a customer without subscriptions can join a test clock.", param="customer"
            )
    now = ctx.em.now()
    clock: Obj = {
        "id": ctx.new_id("clock"),
        "object": _KIND,
        "created": now,
        "deletes_after": now + _DELETES_AFTER_S,
        "frozen_time": frozen,
        "livemode": False,
        "name": name,
        "status": "ready",
        "status_details": {},
    }
    ctx.insert(clock)
    ctx.em.clock_times[clock["id"]] = frozen
    if cus is not None:
        cus["test_clock"] = clock["id"]
        ctx.save(cus)
        ctx.store.add_index(ctx.account, "customer", "test_clock", clock["id"], cus["id"])
    ctx.emit("test_helpers.test_clock.created", clock)
    return clock


@route("GET", "/v1/test_helpers/test_clocks/{id}", perm="test_clocks")
def retrieve(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    return ctx.get(id, _KIND)


@route("GET", "/v1/test_helpers/test_clocks", perm="test_clocks")
def list_(ctx: Ctx, p: Params) -> Obj:
    return list_response(ctx, p, _KIND, "/v1/test_helpers/test_clocks")


def _limit(ctx: Ctx, clock: Obj) -> int:
    """Two intervals of the shortest subscription on the clock, or two years."""
    frozen = int(clock["frozen_time"])
    limits = [shift(frozen, "year", 2)]
    subs, _ = ctx.store.page(
        ctx.account,
        "subscription",
        limit=100,
        where=("test_clock", clock["id"]),
        predicate=lambda o: o["status"] not in ("canceled", "incomplete_expired"),
    )
    for sub in subs:
        interval, count = lifecycle._recurring(sub)
        limits.append(shift(frozen, interval, 2 * count))
    return min(limits)


@route("POST", "/v1/test_helpers/test_clocks/{id}/advance", perm="test_clocks")
def advance(ctx: Ctx, p: Params, id: str) -> Obj:
    clock = ctx.get(id, _KIND)
    target = p.integer("frozen_time", required=True, min=0)
    p.done()
    assert target is not None
    if clock["status"] == "advancing":
        raise invalid("This test clock is already advancing. Wait until it is ready.")
    if target <= clock["frozen_time"]:
        raise invalid(
            "The frozen_time must be after the test clock's current frozen_time.",
            param="frozen_time",
        )
    limit = _limit(ctx, clock)
    if target > limit:
        raise invalid(
            "Cannot advance the test clock more than two intervals of its shortest "
            f"subscription, or two years without one: at most to {limit}.",
            param="frozen_time",
        )
    clock["status"] = "advancing"
    clock["status_details"] = {"advancing": {"target_frozen_time": target}}
    ctx.save(clock)
    ctx.emit("test_helpers.test_clock.advancing", clock)
    ctx.em.jobs.append(_advancing(ctx.em, ctx.account, id, target))
    return clock


def _advancing(em: Emulator, account: str, clock_id: str, target: int):  # type: ignore[no-untyped-def]
    """One test clock advance as a sliced background job."""

    def job() -> bool:
        clock = em.store.get(clock_id, account, _KIND)
        if clock is None:
            return True  # deleted meanwhile
        ctx = em.ctx(account)
        try:
            if not em.step_clock(clock_id, target, _SLICE_S):
                return False
        except Exception:
            log.exception("test clock %s failed while advancing", clock_id)
            clock = em.store.get(clock_id, account, _KIND) or clock
            clock["status"] = "internal_failure"
            clock["status_details"] = {}
            ctx.save(clock)
            ctx.emit("test_helpers.test_clock.internal_failure", clock)
            return True
        clock = em.store.get(clock_id, account, _KIND) or clock
        clock["frozen_time"] = target
        clock["status"] = "ready"
        clock["status_details"] = {}
        ctx.save(clock)
        ctx.emit("test_helpers.test_clock.ready", clock)
        return True

    return job


@route("DELETE", "/v1/test_helpers/test_clocks/{id}", perm="test_clocks")
def delete(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    clock = ctx.get(id, _KIND)
    store = ctx.store
    customers, _ = store.page(ctx.account, "customer", limit=100, where=("test_clock", id))
    for cus in customers:
        for kind in ("subscription", "invoice", "invoiceitem"):
            field = "customer"
            while True:
                found, _ = store.page(ctx.account, kind, limit=100, where=(field, cus["id"]))
                if not found:
                    break
                for obj in found:
                    store.delete(obj["id"])
        store.delete(cus["id"])
    store.delete(id)
    ctx.em.drop_clock(id)
    ctx.emit("test_helpers.test_clock.deleted", clock)
    return {"id": id, "object": _KIND, "deleted": True}
