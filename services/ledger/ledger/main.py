"""`python -m ledger`: run the ledger service until SIGTERM/SIGINT, then drain."""

from __future__ import annotations

from payplane.runtime import run_service

from .bootstrap import start
from .settings import LedgerSettings


def main() -> None:
    run_service("ledger", LedgerSettings, start)


if __name__ == "__main__":
    main()
