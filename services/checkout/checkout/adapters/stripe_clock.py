"""Stripe's clock, for decisions that race Stripe's own timers (authorisation expiry).

An authorisation lapses on Stripe's clock, counted from the charge's `created`. In production
Stripe's clock is the wall clock (NTP), so `SystemClock` is right. The emulator's clock can be
advanced (`POST /_emulator/clock/advance`); `EmulatorClock` reads it from
`GET /_emulator/clock`, so checkout sees the time Stripe's objects are stamped with. The
composition root picks one from the `stripe_clock` setting (auto: the emulator's when it
answers at the Stripe base URL, else the wall clock).
"""

from __future__ import annotations

import time
from typing import Protocol

import aiohttp

__all__ = ["EmulatorClock", "StripeClock", "SystemClock", "detect_clock"]


class StripeClock(Protocol):
    async def now(self) -> float: ...


class SystemClock:
    async def now(self) -> float:
        return time.time()


class EmulatorClock:
    def __init__(self, base_url: str) -> None:
        self.url = base_url.rstrip("/") + "/_emulator/clock"

    async def now(self) -> float:
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(self.url) as resp:
                resp.raise_for_status()
                data = await resp.json()
        return float(data["now"])


async def detect_clock(mode: str, base_url: str | None) -> StripeClock:
    if mode == "system" or not base_url:
        return SystemClock()
    clock = EmulatorClock(base_url)
    if mode == "emulator":
        return clock
    try:
        await clock.now()
    except (aiohttp.ClientError, TimeoutError, KeyError, ValueError):
        return SystemClock()
    return clock
