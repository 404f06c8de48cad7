"""How much the fuzz suite runs: modest and deterministic in `make test`, more on demand.

    FUZZ_EXAMPLES=2000 FUZZ_RANDOM=1 .venv/bin/python -m pytest tests/fuzz

FUZZ_EXAMPLES is the number of generated requests per RPC (and of webhook bodies);
FUZZ_RANDOM=1 draws new examples each run instead of the same derandomized ones.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

__all__ = ["FUZZ"]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=not os.environ.get("FUZZ_RANDOM"),
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
