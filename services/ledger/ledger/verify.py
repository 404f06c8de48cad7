"""`python -m ledger.verify`: check the journal's hash chain, that every entry balances and
that running balances equal their postings. Exit 0 when intact, 1 listing every problem.

Reads DATABASE_URL / DATABASE_SCHEMA (and the rest of LedgerSettings) from the environment;
`--database-url` and `--schema` override them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from payplane.db import create_engine, session_factory
from payplane.events import Inbox

from .adapters import tables
from .service.handlers import Ledger

__all__ = ["main", "verify"]


async def verify(database_url: str, schema: str | None) -> list[str]:
    engine = create_engine(database_url, schema=schema)
    try:
        ledger = Ledger(session_factory(engine), Inbox(tables.inbox))
        return [f"seq {b.seq}: {b.reason}" for b in await ledger.verify()]
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ledger.verify", description=__doc__)
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", "sqlite:///.run/ledger.db")
    )
    parser.add_argument("--schema", default=os.environ.get("DATABASE_SCHEMA") or None)
    args = parser.parse_args(argv)
    problems = asyncio.run(verify(args.database_url, args.schema))
    for problem in problems:
        print(problem)
    print(
        "journal intact" if not problems else f"{len(problems)} problem(s) found", file=sys.stderr
    )
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
