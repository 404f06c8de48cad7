"""Helpers shared by resource modules: list pages, created filters, addresses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import missing
from ..params import Params
from ..state import Ctx
from ..store import Obj

__all__ = ["address", "created_filter", "get_child", "list_response", "public", "public_page"]


def created_filter(p: Params, key: str = "created") -> Callable[[Obj], bool] | None:
    """`created=123` or `created[gte]=...&created[lt]=...` as a predicate."""
    if not p.has(key):
        return None
    raw = p.raw(key)
    if isinstance(raw, str):
        exact = p.integer(key)
        return lambda o: o.get(key) == exact
    sub = p.sub(key)
    assert sub is not None
    bounds = {op: sub.integer(op) for op in ("gt", "gte", "lt", "lte")}
    sub.done()

    def pred(o: Obj) -> bool:
        v = o.get(key) or 0
        return not (
            (bounds["gt"] is not None and not v > bounds["gt"])
            or (bounds["gte"] is not None and not v >= bounds["gte"])
            or (bounds["lt"] is not None and not v < bounds["lt"])
            or (bounds["lte"] is not None and not v <= bounds["lte"])
        )

    return pred


def list_response(
    ctx: Ctx,
    p: Params,
    kind: str,
    url: str,
    *,
    where: tuple[str, str] | None = None,
    predicate: Callable[[Obj], bool] | None = None,
    account: str | None = None,
) -> Obj:
    """Read the standard list parameters, check the rest, and answer one page."""
    limit = p.integer("limit", min=1, max=100)
    starting_after = p.string("starting_after")
    ending_before = p.string("ending_before")
    created = created_filter(p)
    p.done()
    preds = [f for f in (predicate, created) if f is not None]
    combined = (lambda o: all(f(o) for f in preds)) if preds else None
    try:
        items, has_more = ctx.store.page(
            account or ctx.account,
            kind,
            limit=limit or 10,
            starting_after=starting_after,
            ending_before=ending_before,
            where=where,
            predicate=combined,
        )
    except KeyError as exc:
        param = "starting_after" if starting_after else "ending_before"
        raise missing(kind, str(exc.args[0]), param) from None
    return {"object": "list", "data": items, "has_more": has_more, "url": url}


def address(p: Params | None) -> dict[str, Any] | None:
    if p is None:
        return None
    out = {k: p.string(k) for k in ("city", "country", "line1", "line2", "postal_code", "state")}
    p.done()
    return out


def get_child(
    ctx: Ctx, parent_kind: str, parent_id: str, kind: str, obj_id: str, link: str, label: str
) -> Obj:
    """A sub-resource addressed through its parent (`/v1/transfers/{tr}/reversals/{id}`):
    404 unless both exist and the child's `link` field names that parent."""
    ctx.get(parent_id, parent_kind)
    obj = ctx.get(obj_id, kind)
    if obj[link] != parent_id:
        raise missing(label, obj_id)
    return obj


def public(obj: Obj) -> Obj:
    """The object as Stripe shows it: without the emulator's `_`-prefixed bookkeeping."""
    return {k: v for k, v in obj.items() if k[0] != "_"}


def public_page(page: Obj) -> Obj:
    page["data"] = [public(o) for o in page["data"]]
    return page
