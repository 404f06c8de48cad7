"""The servers under test, each started as its own process on a loopback port."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["EMULATOR", "LOCALSTRIPE", "ServerProcess", "free_port"]

EMULATOR = "emulator"
LOCALSTRIPE = "localstripe"
HOST = "127.0.0.1"
_TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    """One server process: started fresh, measured through /proc, stopped."""

    name: str
    localstripe_pickle: bool = True
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def argv(self) -> list[str]:
        assert self._tmp is not None
        if self.name == EMULATOR:
            return [
                sys.executable, "-m", "stripe_emulator", "--host", HOST, "--port",
                str(self.port), "--rate-limit", "off", "--log-level", "WARNING",
            ]  # fmt: skip
        if self.name == LOCALSTRIPE:
            argv = [
                sys.executable, "-m", "bench.localstripe_server", "--host", HOST, "--port",
                str(self.port), "--pickle-path", str(Path(self._tmp.name) / "store.pickle"),
            ]  # fmt: skip
            return argv if self.localstripe_pickle else [*argv, "--no-pickle"]
        raise ValueError(f"unknown server {self.name!r}")

    def start(self, timeout: float = 30.0) -> None:
        # On tmpfs when there is one: localstripe's store dumps then stay in memory.
        shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        self._tmp = tempfile.TemporaryDirectory(prefix=f"bench-{self.name}-", dir=shm)
        self.port = free_port()
        with open(Path(self._tmp.name) / "server.log", "wb") as log:
            self.proc = subprocess.Popen(
                self.argv(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.log()}")
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 0.2):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not listen on {self.url} within {timeout}s")

    def log(self, tail: int = 4000) -> str:
        if self._tmp is None:
            return ""
        try:
            return (Path(self._tmp.name) / "server.log").read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def memory_kib(self) -> dict[str, int]:
        """VmRSS and VmHWM (peak RSS) from /proc/<pid>/status, in KiB."""
        out: dict[str, int] = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(rest.split()[0])
        return out

    def cpu_seconds(self) -> float:
        """User + system CPU time the server has used so far."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime (fields 14, 15)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
