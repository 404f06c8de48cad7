"""`expand[]`: replace id strings by the objects they name, along dotted paths."""

from __future__ import annotations

from typing import Any

from .errors import InvalidRequest
from .state import Ctx

__all__ = ["expand"]

MAX_DEPTH = 4


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
        raise InvalidRequest(f"This property cannot be expanded ({full}).", param="expand")
    value = node[head]
    if isinstance(value, str) and "_" in value:
        found = _load(ctx, value)
        if found is None:
            raise InvalidRequest(f"This property cannot be expanded ({full}).", param="expand")
        node[head] = value = found
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
    return store.get(obj_id)
