"""Each service's webhook endpoint and restricted API key at the emulator.

The emulator keeps its state in the run directory, so an endpoint outlives one `make run`:
its secret (Stripe shows it only at creation) is kept in `<run dir>/webhook_endpoints.json`
and the endpoint is reused while url and events match; otherwise stale endpoints for that
url are deleted and a new one is created.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import stripe

from stripe_emulator.testing import EmulatorControl

__all__ = ["register_endpoint", "restricted_key", "stripe_client"]


def stripe_client(base_url: str, api_key: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key, base_addresses={"api": base_url, "connect": base_url, "files": base_url}
    )


def _load(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def register_endpoint(
    client: stripe.StripeClient, state_file: Path, service: str, url: str, events: list[str]
) -> str:
    """The webhook secret of `service`'s endpoint (url, events), creating it if needed."""
    saved = _load(state_file)
    known = saved.get(service)
    if known and known.get("url") == url:
        try:
            endpoint = client.v1.webhook_endpoints.retrieve(str(known["id"]))
        except stripe.InvalidRequestError:
            endpoint = None
        if (
            endpoint is not None
            and endpoint.url == url
            and sorted(endpoint.enabled_events) == sorted(events)
            and endpoint.status == "enabled"
        ):
            return str(known["secret"])
    for stale in client.v1.webhook_endpoints.list(params={"limit": 100}).auto_paging_iter():
        if stale.url == url:
            client.v1.webhook_endpoints.delete(stale.id)
    created = client.v1.webhook_endpoints.create(
        params={"url": url, "enabled_events": events, "description": f"payplane {service}"}  # type: ignore[typeddict-item]
    )
    secret = str(created.secret)
    saved[service] = {"id": created.id, "url": url, "secret": secret}
    state_file.write_text(json.dumps(saved, indent=2) + "\n")
    return secret


def restricted_key(emulator_url: str, service: str, fallback: str) -> str:
    """Register `service`'s own restricted key at the emulator, with the permissions its
    composition root declares (`<service>.bootstrap.STRIPE_PERMISSIONS`); services that
    declare none get `fallback` (the account's secret key)."""
    try:
        permissions = importlib.import_module(f"{service}.bootstrap").STRIPE_PERMISSIONS
    except (ImportError, AttributeError):
        return fallback
    key = f"rk_test_payplane_{service}_local"
    EmulatorControl(emulator_url).restricted_key(key, dict(permissions))
    return key
