"""Subscription items: add, read, change, remove and list the items of a subscription,
billed like the equivalent subscription update."""

from __future__ import annotations

from ..billing import lifecycle
from ..billing.lifecycle import SUB, items_of
from ..errors import invalid, missing
from ..params import Params
from ..router import route
from ..state import Ctx
from ..store import Obj
from .subscription_params import ENDED, PAYMENT_BEHAVIORS, PRORATION, get_subscription
from .subscription_updates import change_items, item_changes

__all__: list[str] = []


def _item_and_sub(ctx: Ctx, item_id: str) -> tuple[Ctx, Obj, Obj]:
    sub_id = lifecycle.subscription_of_item(item_id)
    sub = ctx.find(sub_id, SUB) if sub_id else None
    item = next((i for i in items_of(sub) if i["id"] == item_id), None) if sub else None
    if sub is None or item is None:
        raise missing("subscription_item", item_id)
    return ctx.on_clock(sub.get("test_clock")), sub, item


def _item_behaviors(p: Params) -> tuple[str, int | None, str]:
    proration = p.string("proration_behavior", choices=PRORATION) or "create_prorations"
    proration_date = p.integer("proration_date", min=0)
    behavior = p.string("payment_behavior", choices=PAYMENT_BEHAVIORS) or "allow_incomplete"
    p.boolean("off_session")
    return proration, proration_date, behavior


@route("POST", "/v1/subscription_items", perm="subscriptions")
def create_item(ctx: Ctx, p: Params) -> Obj:
    sub_id = p.string("subscription", required=True)
    assert sub_id is not None
    ctx, sub = get_subscription(ctx, sub_id, "subscription")
    proration, proration_date, behavior = _item_behaviors(p)
    raw = {
        k: p.raw(k)
        for k in (
            "price",
            "plan",
            "price_data",
            "quantity",
            "metadata",
            "tax_rates",
            "discounts",
            "billing_thresholds",
        )
        if p.has(k)
    }
    p.done()
    if sub["status"] in ENDED or sub["status"] == "incomplete":
        raise invalid(f"You cannot add items to a {sub['status']} subscription.")
    changes = item_changes(ctx, sub, [raw])
    sub = change_items(
        ctx,
        sub,
        changes,
        proration_behavior=proration,
        proration_date=proration_date,
        payment_behavior=behavior,
    )
    new = changes[0][1]
    assert new is not None
    return next(i for i in items_of(sub) if i["id"] == new["id"])


@route("GET", "/v1/subscription_items/{id}", perm="subscriptions")
def retrieve_item(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    return _item_and_sub(ctx, id)[2]


@route("POST", "/v1/subscription_items/{id}", perm="subscriptions")
def update_item(ctx: Ctx, p: Params, id: str) -> Obj:
    ctx, sub, _item = _item_and_sub(ctx, id)
    proration, proration_date, behavior = _item_behaviors(p)
    raw: Obj = {"id": id}
    raw.update(
        {
            k: p.raw(k)
            for k in (
                "price",
                "plan",
                "price_data",
                "quantity",
                "metadata",
                "tax_rates",
                "discounts",
                "billing_thresholds",
            )
            if p.has(k)
        }
    )
    p.done()
    if sub["status"] in ENDED or sub["status"] == "incomplete":
        raise invalid(f"You cannot update items of a {sub['status']} subscription.")
    changes = item_changes(ctx, sub, [raw])
    sub = change_items(
        ctx,
        sub,
        changes,
        proration_behavior=proration,
        proration_date=proration_date,
        payment_behavior=behavior,
        before={} if changes else {"items": None},
    )
    return next(i for i in items_of(sub) if i["id"] == id)


@route("DELETE", "/v1/subscription_items/{id}", perm="subscriptions")
def delete_item(ctx: Ctx, p: Params, id: str) -> Obj:
    ctx, sub, item = _item_and_sub(ctx, id)
    proration, proration_date, behavior = _item_behaviors(p)
    p.boolean("clear_usage")
    p.done()
    if len(items_of(sub)) == 1:
        raise invalid(
            "A subscription must have at least one active plan. To cancel a subscription, "
            "please use the cancel API endpoint on /v1/subscriptions."
        )
    change_items(
        ctx,
        sub,
        [(item, None, None)],
        proration_behavior=proration,
        proration_date=proration_date,
        payment_behavior=behavior,
    )
    return {"id": id, "object": "subscription_item", "deleted": True}


@route("GET", "/v1/subscription_items", perm="subscriptions")
def list_items(ctx: Ctx, p: Params) -> Obj:
    sub_id = p.string("subscription", required=True)
    assert sub_id is not None
    limit = p.integer("limit", min=1, max=100) or 10
    after = p.string("starting_after")
    before = p.string("ending_before")
    p.done()
    sub = ctx.get(sub_id, SUB, param="subscription")
    data = items_of(sub)
    ids = [i["id"] for i in data]
    lo = ids.index(after) + 1 if after in ids else 0
    hi = ids.index(before) if before in ids else len(ids)
    page = data[lo:hi][:limit]
    return {
        "object": "list",
        "data": page,
        "has_more": hi - lo > limit,
        "url": f"/v1/subscription_items?subscription={sub_id}",
    }
