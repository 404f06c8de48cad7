"""`python -m checkout`: run the checkout service until SIGTERM/SIGINT, then drain."""

from __future__ import annotations

from payplane.runtime import run_service

from .bootstrap import start
from .settings import CheckoutSettings


def main() -> None:
    run_service("checkout", CheckoutSettings, start)


if __name__ == "__main__":
    main()
