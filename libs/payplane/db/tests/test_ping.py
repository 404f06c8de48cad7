from __future__ import annotations

from pathlib import Path

from payplane.db import create_engine, ping


async def test_ping_answers_for_a_database_and_not_for_a_dead_one(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'ok.db'}")
    dead = create_engine("postgresql://nobody@127.0.0.1:1/none")
    try:
        assert await ping(engine)
        assert not await ping(dead, timeout_s=2)
    finally:
        await engine.dispose()
        await dead.dispose()
