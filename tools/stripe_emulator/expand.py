"""`expand[]`: replace id strings by the objects they name, along dotted paths."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import InvalidRequest
from .state import Ctx

__all__ = ["expand", "includable", "viewer"]

MAX_DEPTH = 4
Includer = Callable[[Ctx, dict[str, Any]], Any]
# Fields Stripe leaves out of an object unless expanded (an invoice's `payments`, a price's
# `tiers`): object type -> field -> what computes it.
_INCLUDABLE: dict[str, dict[str, Includer]] = {}


Viewer = Callable[[dict[str, Any]], dict[str, Any]]
# How a stored object is shown when expanded, for objects whose bookkeeping reaches below
# their top level (an invoice's lines); others just lose their `_`-prefixed keys.
_VIEWS: dict[str, Viewer] = {}


def viewer(object_type: str) -> Callable[[Viewer], Viewer]:
    def register(fn: Viewer) -> Viewer:
        _VIEWS[object_type] = fn
        return fn

    return register


def includable(object_type: str, field: str) -> Callable[[Includer], Includer]:
    def register(fn: Includer) -> Includer:
        _INCLUDABLE.setdefault(object_type, {})[field] = fn
        return fn

    return register


def expand(ctx: Ctx, obj: Any, paths: list[str]) -> Any:
    for path in paths:
        parts = path.split(".")
        if len(parts) > MAX_DEPTH:
            raise InvalidRequest(
                f"You cannot expand more than {MAX_DEPTH} levels of a property.", param="expand"
            )
        _expand(ctx, obj, parts, path)
    return obj


def _expand(ctx: Ctx, node: Any, parts: list[str], full: str) -> None:
    if not parts or not isinstance(node, dict):
        return
    head, rest = parts[0], parts[1:]
    if node.get("object") == "list" and head == "data":
        for item in node.get("data", []):
            _expand(ctx, item, rest, full)
        return
    if head not in node:
        include = _INCLUDABLE.get(str(node.get("object")), {}).get(head)
        if include is None:
            raise InvalidRequest(f"This property cannot be expanded ({full}).", param="expand")
        node[head] = include(ctx, node)
    value = node[head]
    if isinstance(value, str) and "_" in value:
        found = _load(ctx, value)
        if found is None:
            raise InvalidRequest(f"This property cannot be expanded ({full}).", param="expand")
        node[head] = value = found
    elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        loaded = [_load(ctx, v) for v in value]  # an array of ids (`discounts`)
        if any(x is None for x in loaded):
            raise InvalidRequest(f"This property cannot be expanded ({full}).", param="expand")
        node[head] = value = loaded
    if rest:
        if isinstance(value, list):
            for item in value:
                _expand(ctx, item, rest, full)
        else:
            _expand(ctx, value, rest, full)


def _load(ctx: Ctx, obj_id: str) -> Any:
    store = ctx.store
    owner = store.owner(obj_id)
    if owner is None:
        return None
    # Connected-account objects (destination transfers, their payments) are visible to the
    # platform; anything else must belong to the requesting account.
    if owner != ctx.account and not ctx.is_platform:
        return None
    obj = store.get(obj_id)
    if obj is None or obj.get("object", "").startswith("emulator."):
        return None
    # Internal bookkeeping (`_`-prefixed keys) never leaves the emulator.
    view = _VIEWS.get(str(obj.get("object")))
    if view is not None:
        return view(obj)
    return {k: v for k, v in obj.items() if not k.startswith("_")}
