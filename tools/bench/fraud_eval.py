"""`python -m bench.fraud_eval [evaluate's options]` (or `make bench BENCHES=fraud_eval`):
checkout's fraud engine on the Fraud Detection Handbook's benchmark, under its protocol,
beside its published table (checkout.fraud.evaluate; a few minutes on 2 cores). The file
defaults to shared/datasets/fraud-handbook beside the repository (FRAUD_HANDBOOK_CSV
overrides); every other option is evaluate's. Not a test.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from checkout.fraud import evaluate

__all__ = ["DEFAULT_CSV", "main"]

DEFAULT_CSV = (
    Path(__file__).resolve().parents[2].parent
    / "shared/datasets/fraud-handbook/transactions-2018-04-01_2018-08-14.csv.gz"
)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--transactions" not in args:
        csv = Path(os.environ.get("FRAUD_HANDBOOK_CSV", DEFAULT_CSV))
        if not csv.exists():
            print(f"bench.fraud_eval: {csv} not found (set FRAUD_HANDBOOK_CSV)", file=sys.stderr)
            return 2
        args = ["--transactions", str(csv), *args]
    return evaluate.main(args)


if __name__ == "__main__":
    raise SystemExit(main())
