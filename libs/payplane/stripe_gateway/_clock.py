from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

__all__ = ["Now", "Rng", "Sleep", "default_now", "default_rng", "default_sleep"]

Now = Callable[[], float]  # monotonic seconds
Sleep = Callable[[float], Awaitable[None]]


class Rng(Protocol):
    def uniform(self, a: float, b: float, /) -> float: ...


def default_now() -> float:
    return time.monotonic()


async def default_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


def default_rng() -> Rng:
    return random.Random()
