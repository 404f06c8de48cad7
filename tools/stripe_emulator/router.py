"""Route table: Stripe path templates to synchronous handlers.

Resource modules declare routes with `@route("POST", "/v1/customers/{id}", perm="customers")`.
A handler receives the request context, the validated-on-read `Params` and the path
parameters, and returns the object to send back (or raises a `StripeError`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .params import Params
from .state import Ctx

__all__ = ["Route", "match", "route", "routes"]

Handler = Callable[..., Any]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    segments: tuple[str, ...]
    handler: Handler
    perm: str | None  # restricted-key resource; None = any valid key
    lock: str | None  # path parameter naming the object a write locks
    expandable: bool

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.template}"


_ROUTES: dict[tuple[str, int], list[Route]] = {}


def route(
    method: str,
    template: str,
    perm: str | None = None,
    lock: str | None = "auto",
    expandable: bool = True,
) -> Callable[[Handler], Handler]:
    segments = tuple(template.strip("/").split("/"))
    if lock == "auto":
        params = [s[1:-1] for s in segments if s.startswith("{")]
        lock = params[0] if (method == "POST" and params) else None

    def register(fn: Handler) -> Handler:
        r = Route(method, template, segments, fn, perm, lock, expandable)
        group = _ROUTES.setdefault((method, len(segments)), [])
        group.append(r)
        # Literal segments win over parameters: /v1/payouts/{id} must not swallow
        # /v1/payouts/search-like literals.
        group.sort(key=lambda x: sum(s.startswith("{") for s in x.segments))
        return fn

    return register


def match(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    parts = path.strip("/").split("/")
    for r in _ROUTES.get((method, len(parts)), ()):
        args: dict[str, str] = {}
        for seg, part in zip(r.segments, parts, strict=True):
            if seg.startswith("{"):
                if not part:
                    break
                args[seg[1:-1]] = part
            elif seg != part:
                break
        else:
            return r, args
    return None


def allowed_methods(path: str) -> list[str]:
    return sorted({m for (m, _n), _ in _ROUTES.items() if match(m, path)})


ControlHandler = Callable[..., Any]
_CONTROL: dict[tuple[str, int], list[tuple[tuple[str, ...], ControlHandler]]] = {}


def control(method: str, template: str) -> Callable[[ControlHandler], ControlHandler]:
    """Register an emulator-only `/_emulator/...` call: handler(em, body: dict, **path)."""
    segments = tuple(template.strip("/").split("/"))

    def register(fn: ControlHandler) -> ControlHandler:
        _CONTROL.setdefault((method, len(segments)), []).append((segments, fn))
        return fn

    return register


def match_control(method: str, path: str) -> tuple[ControlHandler, dict[str, str]] | None:
    parts = path.strip("/").split("/")
    for segments, fn in _CONTROL.get((method, len(parts)), ()):
        args: dict[str, str] = {}
        for seg, part in zip(segments, parts, strict=True):
            if seg.startswith("{"):
                args[seg[1:-1]] = part
            elif seg != part:
                break
        else:
            return fn, args
    return None


def routes() -> list[Route]:
    return [r for group in _ROUTES.values() for r in group]


def call(r: Route, ctx: Ctx, params: Params, args: dict[str, str]) -> Any:
    return r.handler(ctx, params, **args)
