"""Stripe's form encoding: `metadata[k]=v`, `items[0][price]=p`, `expand[]=x`.

Values stay strings; typed reading and validation happen in `params`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from .errors import InvalidRequest

__all__ = ["parse_form"]

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_MAX_DEPTH = 8
_MAX_PAIRS = 5000


def parse_form(body: str) -> dict[str, Any]:
    try:
        pairs = parse_qsl(
            body, keep_blank_values=True, strict_parsing=False, max_num_fields=_MAX_PAIRS
        )
    except ValueError as exc:
        raise InvalidRequest(f"Invalid request body: {exc}") from None
    root: dict[str, Any] = {}
    for raw_key, value in pairs:
        m = _KEY.match(raw_key)
        if m is None:
            raise InvalidRequest(f"Invalid parameter name: {raw_key!r}", param=raw_key)
        parts = [m.group(1), *re.findall(r"\[([^\[\]]*)\]", m.group(2))]
        if len(parts) > _MAX_DEPTH:
            raise InvalidRequest("Parameters are nested too deeply.", param=raw_key)
        _assign(root, parts, value, raw_key)
    return _listify(root)


def _assign(node: dict[str, Any], parts: list[str], value: str, raw_key: str) -> None:
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "":
            # `a[]=x`: append to a list held under a synthetic index
            part = str(len(node))
        if last:
            if isinstance(node.get(part), dict):
                raise InvalidRequest(
                    f"Invalid value for {raw_key}: expected a hash.", param=raw_key
                )
            node[part] = value
            return
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            raise InvalidRequest(f"Invalid value for {raw_key}: conflicting types.", param=raw_key)
        node = child


def _listify(node: dict[str, Any]) -> dict[str, Any]:
    """Turn dicts whose keys are all 0..n-1 into lists (`items[0]`, `expand[]`)."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        out[key] = _convert(value)
    return out


def _convert(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if value and all(k.isdigit() for k in value):
        indices = sorted(int(k) for k in value)
        if indices == list(range(len(indices))):
            return [_convert(value[str(i)]) for i in indices]
    return {k: _convert(v) for k, v in value.items()}
