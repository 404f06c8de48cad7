"""The client side: the official SDK's async API driving one server, bounded in time and count."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import stripe
from stripe._http_client import HTTPClient

__all__ = [
    "CLIENTS",
    "OPERATIONS",
    "Operation",
    "RunResult",
    "SdkClient",
    "make_client",
    "run_load",
]

API_KEY = "sk_test_bench"
CLIENTS = ("aiohttp", "httpx")
MAX_IN_FLIGHT = 200  # connection pools sized so that every in-flight request has a socket
# Per call. localstripe serves one call at a time, ~0.3 s each at 1,500 PIs: 200 queued
# calls wait a minute, and the SDK's 80 s default would turn that queue into errors.
REQUEST_TIMEOUT_S = 180.0


class BadResult(Exception):
    """The server answered 200 but not with what create+confirm must produce."""


@dataclass(frozen=True)
class Operation:
    name: str
    description: str
    call: Callable[[stripe.StripeClient, int], Awaitable[None]]


async def _payment_intent(client: stripe.StripeClient, n: int) -> None:
    pi = await client.v1.payment_intents.create_async(
        params={
            "amount": 1000 + n % 9000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
        }
    )
    if pi.status != "succeeded":
        raise BadResult(f"PaymentIntent status {pi.status!r}, expected 'succeeded'")


async def _customer(client: stripe.StripeClient, n: int) -> None:
    await client.v1.customers.create_async(params={"email": f"bench{n}@example.com"})


OPERATIONS = {
    "payment_intent": Operation(
        "payment_intent",
        "PaymentIntent create+confirm in one call: payment_intents.create(amount, "
        "currency=usd, payment_method=pm_card_visa, confirm=true)",
        _payment_intent,
    ),
    "customer": Operation(
        "customer",
        "Customer create: customers.create(email) (harness check, not the benchmark)",
        _customer,
    ),
}


@dataclass
class SdkClient:
    """A StripeClient and the HTTP client under it (kept to close it)."""

    stripe: stripe.StripeClient
    http: HTTPClient

    async def close(self) -> None:
        http: Any = self.http  # close_async is untyped in stripe-python
        await http.close_async()


def make_client(base_url: str, kind: str) -> SdkClient:
    """A StripeClient on an async HTTP client whose pool holds MAX_IN_FLIGHT connections.

    Call from a running event loop (aiohttp's connector wants one).
    """
    http_client: HTTPClient
    if kind == "aiohttp":
        import aiohttp

        connector = aiohttp.TCPConnector(limit=MAX_IN_FLIGHT, limit_per_host=MAX_IN_FLIGHT)
        http_client = stripe.AIOHTTPClient(
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S), connector=connector
        )
    elif kind == "httpx":
        import httpx

        http_client = stripe.HTTPXClient(timeout=REQUEST_TIMEOUT_S)
        # The SDK builds its AsyncClient with httpx's default pool (100 connections).
        limits = httpx.Limits(
            max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT
        )
        http_client._client_async = httpx.AsyncClient(limits=limits, timeout=REQUEST_TIMEOUT_S)
    else:
        raise ValueError(f"unknown HTTP client {kind!r}")
    client = stripe.StripeClient(
        API_KEY, base_addresses={"api": base_url}, http_client=http_client, max_network_retries=0
    )
    return SdkClient(client, http_client)


@dataclass
class RunResult:
    in_flight: int
    ok: int = 0
    errors: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, successful calls only
    error_kinds: Counter[str] = field(default_factory=Counter)
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    aborted: str | None = None

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0


async def run_load(
    client: stripe.StripeClient,
    op: Operation,
    *,
    in_flight: int,
    duration: float,
    max_requests: int,
    first_n: int = 0,
    server_cpu: Callable[[], float] | None = None,
) -> RunResult:
    """Keep `in_flight` calls going until `duration` seconds or `max_requests` calls."""
    result = RunResult(in_flight=in_flight)
    issued = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + duration
    perf = time.perf_counter
    lat = result.latencies

    async def worker() -> None:
        nonlocal issued
        while issued < max_requests and loop.time() < deadline and result.aborted is None:
            n = first_n + issued
            issued += 1
            t0 = perf()
            try:
                await op.call(client, n)
            except Exception as exc:
                result.errors += 1
                result.error_kinds[f"{type(exc).__name__}: {str(exc)[:160]}"] += 1
                if result.errors >= 50 and result.errors > result.ok:
                    result.aborted = "more errors than successes"
                continue
            lat.append(perf() - t0)
            result.ok += 1

    cpu0 = time.process_time()
    srv0 = server_cpu() if server_cpu else 0.0
    t0 = perf()
    await asyncio.gather(*(worker() for _ in range(min(in_flight, max_requests))))
    result.elapsed = perf() - t0
    result.client_cpu = time.process_time() - cpu0
    result.server_cpu = (server_cpu() - srv0) if server_cpu else 0.0
    return result
