"""Built-in emulator-only calls under `/_emulator` (JSON in, JSON out; no API key).

Resource modules add their own (3DS outcome, dispute close, ...) with `router.control`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .router import control, routes

if TYPE_CHECKING:
    from .app import EmulatorApp


@control("GET", "/_emulator/health")
def health(app: EmulatorApp, body: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "objects": len(app.em.store), "now": app.em.now()}


@control("POST", "/_emulator/reset")
def reset(app: EmulatorApp, body: dict[str, Any]) -> dict[str, Any]:
    app.em.reset()
    return {"ok": True}


@control("GET", "/_emulator/requests")
def list_requests(app: EmulatorApp, body: dict[str, Any]) -> dict[str, Any]:
    status = body.get("status")
    limit = body.get("limit")
    data = app.requests.query(
        method=body.get("method"),
        path=body.get("path"),
        path_prefix=body.get("path_prefix"),
        idempotency_key=body.get("idempotency_key"),
        status=int(status) if status not in (None, "") else None,
        limit=int(limit) if limit not in (None, "") else None,
    )
    return {"object": "list", "data": data, "count": len(data)}


@control("DELETE", "/_emulator/requests")
def clear_requests(app: EmulatorApp, body: dict[str, Any]) -> dict[str, Any]:
    app.requests.clear()
    return {"ok": True}


@control("GET", "/_emulator/clock")
def get_clock(app: EmulatorApp, body: dict[str, Any]) -> dict[str, Any]:
    return {"now": app.em.now()}


@control("POST", "/_emulator/clock/advance")
def advance_clock(app: EmulatorApp, body: dict[str, Any]) -> dict[str, Any]:
    seconds = float(body.get("seconds", 0)) + 86_400 * float(body.get("days", 0))
    if seconds < 0:
        raise ValueError("seconds must not be negative: the clock only moves forward")
    return {"now": app.em.advance(seconds)}


@control("GET", "/_emulator/faults")
def get_faults(app: EmulatorApp, body: dict[str, Any]) -> dict[str, Any]:
    return app.faults.to_dict()


@control("POST", "/_emulator/faults")
def set_faults(app: EmulatorApp, body: dict[str, Any]) -> dict[str, Any]:
    app.faults.update(body)
    return app.faults.to_dict()


@control("DELETE", "/_emulator/faults")
def clear_faults(app: EmulatorApp, body: dict[str, Any]) -> dict[str, Any]:
    from .faults import Faults

    app.faults = Faults()
    return app.faults.to_dict()


@control("GET", "/_emulator/config")
def get_config(app: EmulatorApp, body: dict[str, Any]) -> dict[str, Any]:
    return app.config.to_dict()


@control("POST", "/_emulator/config")
def set_config(app: EmulatorApp, body: dict[str, Any]) -> dict[str, Any]:
    app.config.update(body)
    return app.config.to_dict()


@control("POST", "/_emulator/restricted_keys")
def add_restricted_key(app: EmulatorApp, body: dict[str, Any]) -> dict[str, Any]:
    key = body["key"]
    perms = body.get("permissions", {})
    if not isinstance(key, str) or not key.startswith("rk_test_"):
        raise ValueError("key must start with rk_test_")
    if not isinstance(perms, dict) or any(v not in ("read", "write") for v in perms.values()):
        raise ValueError("permissions maps a resource to 'read' or 'write'")
    app.config.restricted_keys[key] = dict(perms)
    return {"key": key, "permissions": perms}


@control("GET", "/_emulator/routes")
def list_routes(app: EmulatorApp, body: dict[str, Any]) -> dict[str, Any]:
    return {"data": sorted(f"{r.endpoint} perm={r.perm}" for r in routes())}
