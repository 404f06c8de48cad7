"""Start the stack's processes in order, watch them, and stop them in reverse order.

Children run in their own sessions, so a Ctrl-C at the terminal reaches only the supervisor,
which then stops them in order: services (SIGTERM, they drain), the emulator, NATS; each
gets SIGKILL once the grace period is over (a second Ctrl-C skips the grace). On Linux each
child also gets SIGTERM from the kernel should the supervisor itself die.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from payplane.natsd import nats_server_binary

from . import health
from .config import (
    CONSOLE_PORT,
    DEV_STRIPE_KEY,
    EMULATOR_PORT,
    HOST,
    NATS_PORT,
    StackConfig,
    StackError,
)
from .webhooks import register_endpoint, restricted_key, stripe_client

__all__ = ["Child", "Stack"]

# Service settings the supervisor sets itself; a value left in the developer's shell for one
# of these (say DATABASE_SCHEMA) must not leak into the stack's services.
_SERVICE_VARS = {
    "DATABASE_URL", "DATABASE_SCHEMA", "NATS_URL", "STRIPE_API_KEY", "STRIPE_API_BASE",
    "STRIPE_WEBHOOK_SECRETS", "STRIPE_MAX_RPS", "GRPC_HOST", "GRPC_PORT", "WEBHOOK_HOST",
    "WEBHOOK_PORT", "CALLER_TOKENS", "LOG_LEVEL", "SERVICE_NAME", "CONSOLE_HOST", "CONSOLE_PORT",
    "CONSOLE_USERS", "CONSOLE_CREDENTIALS", "CONSOLE_SESSION_SECRET", "CONSOLE_COOKIE_SECURE",
    "CHECKOUT_ADDRESS", "LEDGER_ADDRESS", "OTEL_SERVICE_NAME",
}  # fmt: skip
_PR_SET_PDEATHSIG = 1
_POLL_S = 0.1


class _Interrupted(Exception):
    pass


def _parent_death_signal() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def set_pdeathsig() -> None:  # runs in the child between fork and exec
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return set_pdeathsig


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[bytes] | None  # None: not ours (an external NATS)
    address: str
    log: Path | None
    healthy: Callable[[], bool]

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def exited(self) -> int | None:
        return self.popen.poll() if self.popen is not None else None


def _tail(path: Path | None, lines: int = 15) -> str:
    if path is None:
        return ""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    " + line for line in text[-lines:])


class Stack:
    def __init__(self, config: StackConfig, out: TextIO = sys.stdout) -> None:
        self.config = config
        self.out = out
        self.nats: Child | None = None
        self.emulator: Child | None = None
        self.services: list[Child] = []
        self.console: Child | None = None
        self._stop = threading.Event()
        self._hurry = False
        self._preexec = _parent_death_signal()
        self._started = time.monotonic()

    # -- entry point ------------------------------------------------------------------------

    def run(self) -> int:
        """Start everything, serve until a signal or a child's death, stop everything."""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        code = 0
        try:
            self._prepare()
            self._start_all()
            self._write_state()
            self._print_table()
            code = self._watch()
        except _Interrupted:
            self._say("interrupted during start-up")
        except StackError as exc:
            print(f"stack: {exc}", file=sys.stderr, flush=True)
            code = 2
        finally:
            self.shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return code

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stop.is_set():
            self._hurry = True  # a second Ctrl-C: no more grace
        self._stop.set()

    def _say(self, message: str) -> None:
        self._print(f"stack: {message}")

    def _print(self, text: str) -> None:
        try:
            print(text, file=self.out, flush=True)
        except OSError:  # a closed stdout (`| head`) must not keep the stack from stopping
            pass

    # -- start-up ---------------------------------------------------------------------------

    def _prepare(self) -> None:
        cfg = self.config
        state = cfg.run_dir / "stack.json"
        if state.exists():
            try:
                other = int(json.loads(state.read_text())["pid"])
                os.kill(other, 0)
            except (OSError, ValueError, KeyError, TypeError):
                state.unlink(missing_ok=True)  # left by a stack that died
            else:
                raise StackError(
                    f"a stack (pid {other}) already runs from {cfg.run_dir}; stop it first "
                    "or set PAYPLANE_RUN_DIR"
                )
        if cfg.fresh:
            for name in ("nats", "nats-ports"):
                shutil.rmtree(cfg.run_dir / name, ignore_errors=True)
            for pattern in ("*.db", "*.db-wal", "*.db-shm", "webhook_endpoints.json"):
                for path in cfg.run_dir.glob(pattern):
                    path.unlink()
        cfg.logs_dir.mkdir(parents=True, exist_ok=True)
        for what, port, var in cfg.fixed_ports():
            if not health.port_free(HOST, port):
                raise StackError(
                    f"port {port} ({what}) is already in use on {HOST}: stop what holds it "
                    f"or choose another port with {var}=<port>"
                )

    def _start_all(self) -> None:
        cfg = self.config
        self.nats = self._start_nats()
        self._wait_healthy([self.nats], "NATS")
        self.emulator = self._spawn(
            "stripe_emulator",
            [
                sys.executable,
                "-m",
                "stripe_emulator",
                "--host",
                HOST,
                "--port",
                str(cfg.emulator_port),
                "--rate-limit",
                "off",
                "--db",
                str(cfg.run_dir / "stripe_emulator.db"),
                "--log-level",
                cfg.log_level,
            ],
            address=cfg.emulator_url,
            healthy=lambda: health.emulator_healthy(cfg.emulator_url),
        )
        self._wait_healthy([self.emulator], "the Stripe emulator")
        client = stripe_client(cfg.emulator_url, DEV_STRIPE_KEY)
        secrets: dict[str, str] = {}
        for sp in cfg.services:
            if sp.webhook_url is not None:
                secrets[sp.spec.name] = register_endpoint(
                    client,
                    cfg.run_dir / "webhook_endpoints.json",
                    sp.spec.name,
                    sp.webhook_url,
                    sp.spec.stripe_event_types(),
                )
        nats_url = self.nats.address
        for sp in cfg.services:
            env = self._service_env(nats_url, secrets.get(sp.spec.name, ""))
            # Each service talks to Stripe with its own restricted key, as in production.
            env["STRIPE_API_KEY"] = restricted_key(cfg.emulator_url, sp.spec.name, DEV_STRIPE_KEY)
            env["DATABASE_URL"] = f"sqlite:///{cfg.run_dir / sp.spec.name}.db"
            env["GRPC_PORT"] = str(sp.grpc_port)
            # Each process under its own name in traces, whatever the shell says (a
            # service.name in OTEL_RESOURCE_ATTRIBUTES would otherwise name them all).
            env["OTEL_SERVICE_NAME"] = sp.spec.name
            address = f"grpc {sp.grpc_address}"
            if sp.webhook_port is not None:
                env["WEBHOOK_PORT"] = str(sp.webhook_port)
                address += f", webhooks {sp.webhook_url}"
            grpc_address = sp.grpc_address
            self.services.append(
                self._spawn(
                    sp.spec.name,
                    [sys.executable, "-m", sp.spec.name],
                    address=address,
                    healthy=functools.partial(health.grpc_serving, grpc_address),
                    env=env,
                )
            )
        self._wait_healthy(self.services, "the services")
        if cfg.console_url is not None:
            self.console = self._start_console(cfg.console_url)
            self._wait_healthy([self.console], "the console")

    def _start_console(self, url: str) -> Child:
        """The operators' console: a client of the services with a credential per role."""
        cfg = self.config
        addresses = {sp.spec.name: sp.grpc_address for sp in cfg.services}
        roles = {role for role, _, _ in cfg.console_users().values()}
        env = {k: v for k, v in os.environ.items() if k not in _SERVICE_VARS}
        env.update(
            CONSOLE_HOST=HOST,
            CONSOLE_PORT=str(cfg.console_port),
            CHECKOUT_ADDRESS=addresses.get("checkout", ""),
            LEDGER_ADDRESS=addresses.get("ledger", ""),
            CONSOLE_CREDENTIALS=",".join(
                f"{role}={token}" for role, token in cfg.callers.items() if role in roles
            ),
            CONSOLE_USERS=",".join(
                f"{name}:{role}:{hashed}" for name, (role, _, hashed) in cfg.console_users().items()
            ),
            # A new secret per start: sessions end with the stack, nothing to keep safe.
            CONSOLE_SESSION_SECRET=secrets.token_urlsafe(32),
            LOG_LEVEL=cfg.log_level,
            OTEL_SERVICE_NAME="console",
            PYTHONUNBUFFERED="1",
        )
        return self._spawn(
            "console",
            [sys.executable, "-m", "console"],
            address=url,
            healthy=lambda: health.http_ok(f"{url}/healthz"),
            env=env,
        )

    def _service_env(self, nats_url: str, webhook_secret: str) -> dict[str, str]:
        cfg = self.config
        env = {k: v for k, v in os.environ.items() if k not in _SERVICE_VARS}
        env.update(
            NATS_URL=nats_url,
            STRIPE_API_KEY=DEV_STRIPE_KEY,
            STRIPE_API_BASE=cfg.emulator_url,
            STRIPE_WEBHOOK_SECRETS=webhook_secret,
            GRPC_HOST=HOST,
            WEBHOOK_HOST=HOST,
            CALLER_TOKENS=cfg.caller_tokens,
            LOG_LEVEL=cfg.log_level,
            # Each service's Stripe budget (requests/s): Stripe's test-mode limit by default.
            STRIPE_MAX_RPS=os.environ.get("PAYPLANE_STRIPE_MAX_RPS", "25"),
            PYTHONUNBUFFERED="1",
        )
        return env

    def _start_nats(self) -> Child:
        cfg = self.config
        if cfg.nats_url is not None:
            url = cfg.nats_url
            return Child("nats", None, url, None, lambda: health.nats_accepting(url))
        port = cfg.nats_port
        if not cfg.nats_port_fixed and not health.port_free(HOST, port):
            port = -1  # the default is taken: the server picks a free port itself
        ports_dir = cfg.run_dir / "nats-ports"
        shutil.rmtree(ports_dir, ignore_errors=True)
        ports_dir.mkdir(parents=True)
        child = self._spawn(
            "nats",
            [
                str(nats_server_binary()),
                "-js",
                "-sd",
                str(cfg.run_dir / "nats"),
                "-a",
                HOST,
                "-p",
                str(port),
                "--ports_file_dir",
                str(ports_dir),
            ],
            address="",
            healthy=lambda: False,
        )
        assert child.popen is not None
        ports_file = ports_dir / f"nats-server_{child.popen.pid}.ports"
        deadline = time.monotonic() + cfg.start_timeout_s
        while port == -1:
            self._check_alive(child)
            try:
                port = int(json.loads(ports_file.read_text())["nats"][0].rsplit(":", 1)[1])
            except (OSError, ValueError, KeyError, IndexError):
                if time.monotonic() > deadline:
                    raise StackError(f"nats-server reported no port; see {child.log}") from None
                time.sleep(_POLL_S)
        url = f"nats://{HOST}:{port}"
        child.address = url
        child.healthy = lambda: health.nats_accepting(url)
        return child

    def _spawn(
        self,
        name: str,
        args: Sequence[str],
        *,
        address: str,
        healthy: Callable[[], bool],
        env: dict[str, str] | None = None,
    ) -> Child:
        if self._stop.is_set():
            raise _Interrupted
        log = self.config.logs_dir / f"{name}.log"
        with log.open("ab") as out:
            out.write(f"==== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(args)}\n".encode())
            out.flush()
            popen = subprocess.Popen(
                list(args),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # Ctrl-C reaches the supervisor only
                preexec_fn=self._preexec,
            )
        child = Child(name, popen, address, log, healthy)
        # Registered at once so that every started process is stopped, whatever happens next.
        if name == "nats":
            self.nats = child
        elif name == "stripe_emulator":
            self.emulator = child
        return child

    def _check_alive(self, child: Child) -> None:
        code = child.exited()
        if code is not None:
            raise StackError(
                f"{child.name} exited with code {code} during start-up; the end of "
                f"{child.log}:\n{_tail(child.log)}"
            )
        if self._stop.is_set():
            raise _Interrupted

    def _wait_healthy(self, children: list[Child], what: str) -> None:
        deadline = time.monotonic() + self.config.start_timeout_s
        pending = list(children)
        while pending:
            for child in list(pending):
                self._check_alive(child)
                if child.healthy():
                    pending.remove(child)
            if not pending:
                return
            if time.monotonic() > deadline:
                names = ", ".join(c.name for c in pending)
                logs = ", ".join(str(c.log) for c in pending if c.log)
                raise StackError(
                    f"{what} not healthy within {self.config.start_timeout_s:.0f}s "
                    f"({names}); see {logs or 'the server'} (PAYPLANE_START_TIMEOUT_S)"
                )
            self._stop.wait(_POLL_S)

    # -- running ----------------------------------------------------------------------------

    def children(self) -> list[Child]:
        found = [self.nats, self.emulator, *self.services, self.console]
        return [c for c in found if c is not None]

    def state(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "pid": os.getpid(),
            "run_dir": str(cfg.run_dir),
            "nats_url": self.nats.address if self.nats else None,
            "stripe": {"url": cfg.emulator_url, "api_key": DEV_STRIPE_KEY},
            "services": {
                sp.spec.name: {"grpc": sp.grpc_address, "webhook_url": sp.webhook_url}
                for sp in cfg.services
            },
            "callers": cfg.callers,
            "console": (
                {
                    "url": cfg.console_url,
                    "users": {n: [u[0], u[1]] for n, u in cfg.console_users().items()},
                }
                if self.console is not None
                else None
            ),
            "processes": [
                {"name": c.name, "pid": c.pid, "address": c.address, "log": str(c.log or "")}
                for c in self.children()
            ],
        }

    def _write_state(self) -> None:
        path = self.config.run_dir / "stack.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state(), indent=2) + "\n")
        tmp.replace(path)

    def _print_table(self) -> None:
        def shown(path: Path | None) -> str:
            if path is None:
                return "-"
            try:
                return str(path.relative_to(Path.cwd()))
            except ValueError:
                return str(path)

        rows = [("name", "pid", "address", "log")]
        rows += [(c.name, str(c.pid or "-"), c.address, shown(c.log)) for c in self.children()]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = ["  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3] for r in rows]
        callers = "  ".join(f"{c}={t}" for c, t in self.config.callers.items())
        self._print("\n".join(lines))
        self._print(f"dev callers (Bearer tokens): {callers}")
        if self.console is not None:
            users = "  ".join(f"{n}/{pw} ({role})" for n, (role, pw, _) in
                              self.config.console_users().items())  # fmt: skip
            self._print(f"console {self.console.address} sign-ins (name/password): {users}")
        self._print(
            f"payplane stack ready in {time.monotonic() - self._started:.1f}s "
            f"(run dir {self.config.run_dir}); `make demo` drives it; Ctrl-C stops it"
        )

    def _watch(self) -> int:
        while not self._stop.wait(0.25):
            for child in self.children():
                code = child.exited()
                if code is not None:
                    self._say(
                        f"{child.name} exited unexpectedly with code {code}; stopping the "
                        f"stack. The end of {child.log}:\n{_tail(child.log)}"
                    )
                    return 1
        return 0

    # -- shutdown ---------------------------------------------------------------------------

    def shutdown(self) -> None:
        """The console, the services (they drain), the emulator, NATS. Safe to call twice."""
        (self.config.run_dir / "stack.json").unlink(missing_ok=True)
        groups = [
            ("console", [self.console] if self.console else []),
            ("services", self.services),
            ("stripe emulator", [self.emulator] if self.emulator else []),
            ("NATS", [self.nats] if self.nats else []),
        ]
        stopped = False
        for what, group in groups:
            running = [c for c in group if c.popen is not None and c.popen.poll() is None]
            if not running:
                continue
            self._say(f"stopping {what}: {', '.join(c.name for c in running)}")
            self._stop_group(running)
            stopped = True
        if stopped:
            self._say("stopped")

    def _stop_group(self, group: list[Child]) -> None:
        for child in group:
            assert child.popen is not None
            child.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.config.stop_grace_s
        while any(c.popen is not None and c.popen.poll() is None for c in group):
            if self._hurry or time.monotonic() > deadline:
                for child in group:
                    assert child.popen is not None
                    if child.popen.poll() is None:
                        self._say(f"{child.name} did not stop in time: SIGKILL")
                        child.popen.kill()
                break
            time.sleep(0.05)
        for child in group:
            assert child.popen is not None
            child.popen.wait()


def describe_ports() -> list[tuple[str, str, str]]:
    """(process, variable, default) for the README and `--help`."""
    from .config import SERVICES

    rows = [
        ("NATS", NATS_PORT.var, f"{NATS_PORT.default} (a free port if taken)"),
        ("Stripe emulator", EMULATOR_PORT.var, str(EMULATOR_PORT.default)),
        ("console (HTTP)", CONSOLE_PORT.var, str(CONSOLE_PORT.default)),
    ]
    for spec in SERVICES:
        rows.append((f"{spec.name} gRPC", spec.grpc_port.var, str(spec.grpc_port.default)))
        if spec.webhook_port is not None:
            rows.append(
                (f"{spec.name} webhooks", spec.webhook_port.var, str(spec.webhook_port.default))
            )
    return rows
