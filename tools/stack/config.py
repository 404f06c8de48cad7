"""What the local stack runs, on which ports, read once from `PAYPLANE_*` variables.

Adding a service (billing and payouts are already listed) is one `ServiceSpec` in
`SERVICES`: its package, its default ports and, when it receives Stripe webhooks, where its
`EVENT_TYPES` live. A listed service joins the stack as soon as its package has a
`__main__.py` (`services/<name>/<name>/__main__.py`).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CONSOLE_PORT",
    "DEV_CALLERS",
    "DEV_STRIPE_KEY",
    "DEV_USERS",
    "EMULATOR_PORT",
    "NATS_PORT",
    "SERVICES",
    "PortSetting",
    "ServiceSpec",
    "StackConfig",
    "StackError",
]

HOST = "127.0.0.1"
# Development credentials only: every service of the local stack accepts these callers.
DEV_CALLERS: dict[str, str] = {
    "storefront": "dev-storefront-token",
    "admin": "dev-admin-token",
    "support": "dev-support-token",
    "finance": "dev-finance-token",
    "reviewer": "dev-reviewer-token",
}
DEV_STRIPE_KEY = "sk_test_payplane_local"
# Development sign-ins for the console (local stack only): name -> (role, password, its
# scrypt hash as `python -m console hash-password` makes it; a test checks they match).
DEV_USERS: dict[str, tuple[str, str, str]] = {
    "alice": ("reviewer", "alice-dev-password",
              "scrypt$14$8$5$YE8QjHUjP-9KRMPVsp3nPg$PYB4UHv_ZU-fG9uW18xqfc12zNLSGfN-BRzCmghqLY8"),
    "fiona": ("finance", "fiona-dev-password",
              "scrypt$14$8$5$-AUc_FsuHXsrqLy6ULqt0w$CXpQP3XNsygHRiFKcRmbRSrXAe_5OxgdBZGYOxJmaAM"),
    "sam": ("support", "sam-dev-password",
            "scrypt$14$8$5$MDFxxrMyM-M4hOe7SqYlhQ$GEJXm1deJjk4vfYaCDq8p-BAbyqcQUDG1S9xkZ3VNyE"),
    "ada": ("admin", "ada-dev-password",
            "scrypt$14$8$5$TqbaCAadJikBRCvxQ_WCuw$_ETQ3QZxSbmxFaoDsyaLfBYvSpjRA1L6k3AFdK6r7O4"),
}  # fmt: skip


class StackError(Exception):
    """The stack cannot start as configured (the message says what to change)."""


@dataclass(frozen=True)
class PortSetting:
    var: str
    default: int

    def resolve(self, env: Mapping[str, str]) -> int:
        raw = env.get(self.var, "").strip()
        if not raw:
            return self.default
        try:
            port = int(raw)
        except ValueError:
            raise StackError(f"{self.var}={raw!r} is not a port number") from None
        if not 0 < port < 65536:
            raise StackError(f"{self.var}={port} is out of range (1-65535)")
        return port


NATS_PORT = PortSetting("PAYPLANE_NATS_PORT", 14222)
EMULATOR_PORT = PortSetting("PAYPLANE_EMULATOR_PORT", 12111)
CONSOLE_PORT = PortSetting("PAYPLANE_CONSOLE_PORT", 8100)


def console_available() -> bool:
    """The operators' console (services/console) is installed and runnable."""
    spec = importlib.util.find_spec("console")
    if spec is None or not spec.submodule_search_locations:
        return False
    return any((Path(p) / "__main__.py").is_file() for p in spec.submodule_search_locations)


@dataclass(frozen=True)
class ServiceSpec:
    """One service of the stack, run as `python -m <name>`."""

    name: str
    grpc_port: PortSetting
    webhook_port: PortSetting | None = None
    # "module:ATTRIBUTE" naming the Stripe event types its webhook endpoint subscribes to.
    event_types: str | None = None

    def available(self) -> bool:
        """The service's package exists and is runnable (`<name>/__main__.py`)."""
        spec = importlib.util.find_spec(self.name)
        if spec is None or not spec.submodule_search_locations:
            return False
        return any((Path(p) / "__main__.py").is_file() for p in spec.submodule_search_locations)

    def stripe_event_types(self) -> list[str]:
        if self.event_types is None:
            return []
        module, _, attr = self.event_types.partition(":")
        types = getattr(importlib.import_module(module), attr)
        return [str(t) for t in types]


def _spec(name: str, grpc: int, webhook: int | None = None) -> ServiceSpec:
    return ServiceSpec(
        name=name,
        grpc_port=PortSetting(f"PAYPLANE_{name.upper()}_GRPC_PORT", grpc),
        webhook_port=(
            PortSetting(f"PAYPLANE_{name.upper()}_WEBHOOK_PORT", webhook) if webhook else None
        ),
        event_types=f"{name}.entrypoints.stripe_events:EVENT_TYPES" if webhook else None,
    )


# The order is the start order (all are started together, then awaited) and the table's.
SERVICES: tuple[ServiceSpec, ...] = (
    _spec("checkout", 50051, 8101),
    _spec("billing", 50052, 8102),  # joins when services/billing/billing/__main__.py exists
    _spec("payouts", 50053, 8103),  # joins when services/payouts/payouts/__main__.py exists
    _spec("ledger", 50054),
)


@dataclass(frozen=True)
class ServicePorts:
    spec: ServiceSpec
    grpc_port: int
    webhook_port: int | None

    @property
    def grpc_address(self) -> str:
        return f"{HOST}:{self.grpc_port}"

    @property
    def webhook_url(self) -> str | None:
        if self.webhook_port is None:
            return None
        return f"http://{HOST}:{self.webhook_port}/webhooks/stripe"


@dataclass(frozen=True)
class StackConfig:
    run_dir: Path
    nats_url: str | None  # an external server (NATS_URL): none is started
    nats_port: int
    nats_port_fixed: bool  # PAYPLANE_NATS_PORT was set: no fallback to a free port
    emulator_port: int
    services: tuple[ServicePorts, ...]
    callers: dict[str, str]
    log_level: str
    start_timeout_s: float
    stop_grace_s: float
    fresh: bool = False
    console_port: int | None = None  # None: the console is not part of this stack

    @property
    def logs_dir(self) -> Path:
        return self.run_dir / "logs"

    @property
    def emulator_url(self) -> str:
        return f"http://{HOST}:{self.emulator_port}"

    @property
    def console_url(self) -> str | None:
        return None if self.console_port is None else f"http://{HOST}:{self.console_port}"

    def console_users(self) -> dict[str, tuple[str, str, str]]:
        """The dev users whose role has a caller credential in this stack."""
        return {name: u for name, u in DEV_USERS.items() if u[0] in self.callers}

    @property
    def caller_tokens(self) -> str:
        return ",".join(f"{caller}={token}" for caller, token in self.callers.items())

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], *, cwd: Path | None = None, fresh: bool = False
    ) -> StackConfig:
        run_dir = Path(env.get("PAYPLANE_RUN_DIR") or ".run")
        if not run_dir.is_absolute():
            run_dir = (cwd or Path.cwd()) / run_dir
        services = tuple(
            ServicePorts(
                spec,
                spec.grpc_port.resolve(env),
                spec.webhook_port.resolve(env) if spec.webhook_port else None,
            )
            for spec in SERVICES
            if spec.available()
        )
        callers = dict(DEV_CALLERS)
        if env.get("PAYPLANE_CALLER_TOKENS"):
            callers = {}
            for pair in env["PAYPLANE_CALLER_TOKENS"].split(","):
                caller, sep, token = pair.strip().partition("=")
                if not sep or not caller or not token:
                    raise StackError("PAYPLANE_CALLER_TOKENS: expected caller=token,... pairs")
                callers[caller] = token
        config = cls(
            run_dir=run_dir,
            nats_url=env.get("NATS_URL") or None,
            nats_port=NATS_PORT.resolve(env),
            nats_port_fixed=bool(env.get(NATS_PORT.var, "").strip()),
            emulator_port=EMULATOR_PORT.resolve(env),
            services=services,
            callers=callers,
            log_level=env.get("PAYPLANE_LOG_LEVEL") or "INFO",
            start_timeout_s=_seconds(env, "PAYPLANE_START_TIMEOUT_S", 60.0),
            stop_grace_s=_seconds(env, "PAYPLANE_STOP_GRACE_S", 15.0),
            fresh=fresh,
            console_port=CONSOLE_PORT.resolve(env) if console_available() else None,
        )
        config.check_distinct()
        return config

    def fixed_ports(self) -> list[tuple[str, int, str]]:
        """(what, port, variable) for every port the stack must get exactly."""
        ports = [("stripe emulator", self.emulator_port, EMULATOR_PORT.var)]
        for sp in self.services:
            ports.append((f"{sp.spec.name} gRPC", sp.grpc_port, sp.spec.grpc_port.var))
            if sp.webhook_port is not None and sp.spec.webhook_port is not None:
                ports.append(
                    (f"{sp.spec.name} webhooks", sp.webhook_port, sp.spec.webhook_port.var)
                )
        if self.console_port is not None:
            ports.append(("console", self.console_port, CONSOLE_PORT.var))
        if self.nats_url is None and self.nats_port_fixed:
            ports.append(("NATS", self.nats_port, NATS_PORT.var))
        return ports

    def check_distinct(self) -> None:
        seen: dict[int, str] = {}
        for what, port, var in self.fixed_ports():
            if port in seen:
                raise StackError(f"{var}: port {port} is also used by {seen[port]}")
            seen[port] = f"{what} ({var})"


def _seconds(env: Mapping[str, str], var: str, default: float) -> float:
    raw = env.get(var, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise StackError(f"{var}={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise StackError(f"{var} must be positive")
    return value
