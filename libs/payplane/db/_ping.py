from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["ping"]


async def ping(engine: AsyncEngine, timeout_s: float = 5.0) -> bool:
    """Whether the database answers `SELECT 1` within `timeout_s` (a health check). On
    SQLite's single pooled connection it queues behind running transactions like any other."""
    try:
        async with asyncio.timeout(timeout_s), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        return False
    return True
