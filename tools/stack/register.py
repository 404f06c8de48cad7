"""`python -m stack.register`: register one service's webhook endpoint with a Stripe emulator
and write its whsec_ secret to a file (the dev Kubernetes overlay's init container).

    python -m stack.register --service checkout --emulator http://stripe-emulator:12111 \
        --url http://checkout:8101/webhooks/stripe --out /run/payplane/webhook-secret
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import health
from .config import DEV_STRIPE_KEY, SERVICES
from .webhooks import register_endpoint, stripe_client


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.register", description=__doc__)
    parser.add_argument("--service", required=True, choices=[s.name for s in SERVICES])
    parser.add_argument("--emulator", required=True, help="the emulator's base URL")
    parser.add_argument("--url", required=True, help="the URL the emulator delivers to")
    parser.add_argument("--out", required=True, type=Path, help="file to write the secret to")
    parser.add_argument("--api-key", default=DEV_STRIPE_KEY)
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for it")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.wait
    while not health.emulator_healthy(args.emulator):
        if time.monotonic() > deadline:
            print(f"register: {args.emulator} not healthy within {args.wait}s", file=sys.stderr)
            return 1
        time.sleep(1)
    spec = next(s for s in SERVICES if s.name == args.service)
    secret = register_endpoint(
        stripe_client(args.emulator, args.api_key),
        args.out.with_suffix(".endpoints.json"),
        spec.name,
        args.url,
        spec.stripe_event_types(),
    )
    args.out.write_text(secret)
    print(f"register: {spec.name} endpoint for {args.url} registered")
    return 0


if __name__ == "__main__":
    sys.exit(main())
