"""Test helpers: start the emulator, drive its control API, point the SDK at it.

with running_emulator(Config(global_rate=None)) as emu:
    client = emu.stripe_client()
    client.v1.customers.create(params={"email": "a@example.com"})
    assert emu.control.requests(path="/v1/customers")[0]["status"] == 200
"""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import stripe

from .app import EmulatorApp
from .config import Config
from .server import ThreadedEmulator

__all__ = [
    "EmulatorControl",
    "EmulatorHandle",
    "assert_fixture_keys",
    "fixture_keys",
    "running_emulator",
    "stripe_client",
]

TEST_KEY = "sk_test_emulator"


class EmulatorControl:
    """A small client for the emulator-only `/_emulator/...` calls."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.base_url + path, data=data, method=method,
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{method} {path}: {exc.code} {exc.read().decode()}") from None

    def reset(self) -> None:
        self.call("POST", "/_emulator/reset")

    def requests(self, **filters: Any) -> list[dict[str, Any]]:
        query = "&".join(f"{k}={v}" for k, v in filters.items() if v is not None)
        result: list[dict[str, Any]] = self.call("GET", "/_emulator/requests?" + query)["data"]
        return result

    def clear_requests(self) -> None:
        self.call("DELETE", "/_emulator/requests")

    def advance(self, seconds: float = 0, days: float = 0) -> int:
        now: int = self.call(
            "POST", "/_emulator/clock/advance", {"seconds": seconds, "days": days}
        )["now"]
        return now

    def now(self) -> int:
        now: int = self.call("GET", "/_emulator/clock")["now"]
        return now

    def faults(self, **settings: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", "/_emulator/faults", settings)
        return result

    def clear_faults(self) -> None:
        self.call("DELETE", "/_emulator/faults")

    def configure(self, **settings: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", "/_emulator/config", settings)
        return result

    def restricted_key(self, key: str, permissions: dict[str, str]) -> None:
        self.call("POST", "/_emulator/restricted_keys", {"key": key, "permissions": permissions})


def stripe_client(base_url: str, api_key: str = TEST_KEY, **kwargs: Any) -> stripe.StripeClient:
    """The official SDK pointed at the emulator (no SDK retries unless asked)."""
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": base_url, "connect": base_url, "files": base_url},
        **kwargs,
    )


class EmulatorHandle:
    def __init__(self, threaded: ThreadedEmulator, url: str, app: EmulatorApp) -> None:
        self._threaded = threaded
        self.url = url
        self.app = app
        self.control = EmulatorControl(url)

    def stripe_client(self, api_key: str = TEST_KEY, **kwargs: Any) -> stripe.StripeClient:
        return stripe_client(self.url, api_key, **kwargs)

    def call(self, fn: Any, *args: Any) -> Any:
        """Run fn(*args) on the emulator's own event loop (for direct state inspection)."""
        return self._threaded.call(fn, *args)


@contextlib.contextmanager
def running_emulator(
    config: Config | None = None, store_path: str | None = None
) -> Iterator[EmulatorHandle]:
    threaded = ThreadedEmulator(config, store_path=store_path)
    running = threaded.start()
    try:
        yield EmulatorHandle(threaded, running.url, running.app)
    finally:
        threaded.stop()


FIXTURES_PATH = Path(__file__).resolve().parents[2].parent / "shared" / "stripe" / "fixtures3.json"


def fixture_keys(resource: str) -> set[str]:
    """Top-level keys of Stripe's example object for `resource` (../shared/stripe/fixtures3.json).

    Fails loudly when the file is missing: a silent skip would hide every shape check.
    """
    if not FIXTURES_PATH.exists():
        raise FileNotFoundError(
            f"{FIXTURES_PATH} is missing: clone the project beside shared/ (see README)"
        )
    resources = json.loads(FIXTURES_PATH.read_text())["resources"]
    return set(resources[resource])


def assert_fixture_keys(obj: Any, resource: str, nested: tuple[str, ...] = ()) -> None:
    """`obj` (a dict or StripeObject) carries every key of Stripe's example `resource`.

    `nested` names sub-objects to compare too, e.g. ("outcome",) for a charge.
    """
    data = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    missing = fixture_keys(resource) - set(data)
    assert not missing, f"{resource} lacks Stripe's keys: {sorted(missing)}"
    example = json.loads(FIXTURES_PATH.read_text())["resources"][resource]
    for key in nested:
        want = example.get(key)
        have = data.get(key)
        if isinstance(want, dict) and isinstance(have, dict):
            lacking = set(want) - set(have)
            assert not lacking, f"{resource}.{key} lacks Stripe's keys: {sorted(lacking)}"
