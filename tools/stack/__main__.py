"""`python -m stack` (`make run`): the whole platform on this machine until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import sys

from .config import StackConfig, StackError
from .supervisor import Stack, describe_ports


def main(argv: list[str] | None = None) -> int:
    ports = "\n".join(
        f"  {var:<32} {what} (default {default})" for what, var, default in describe_ports()
    )
    parser = argparse.ArgumentParser(
        prog="python -m stack",
        description="Run NATS, the Stripe emulator and every service locally, until Ctrl-C.",
        epilog="ports (environment):\n" + ports + "\nother: PAYPLANE_RUN_DIR (.run), NATS_URL "
        "(use that server, start none), PAYPLANE_LOG_LEVEL, PAYPLANE_CALLER_TOKENS, "
        "PAYPLANE_START_TIMEOUT_S, PAYPLANE_STOP_GRACE_S",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="forget earlier runs: delete the run directory's databases, NATS store and "
        "webhook secrets first",
    )
    args = parser.parse_args(argv)
    try:
        config = StackConfig.from_env(os.environ, fresh=args.fresh)
        return Stack(config).run()
    except StackError as exc:
        print(f"stack: {exc}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
