"""`python -m stack` as a developer runs it: a subprocess on free ports with its own run
directory; one payment over gRPC with the dev credential reaches the books; SIGINT stops
every process it started."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.passwords import verify_password
from console.users import parse_users
from payplane.checkout.v1 import checkout_pb2, checkout_pb2_grpc
from payplane.common.v1 import common_pb2
from payplane.grpckit import channel, idempotency_metadata
from payplane.ledger.v1 import ledger_pb2, ledger_pb2_grpc
from stack.config import DEV_CALLERS, DEV_USERS
from stack.launch import free_ports_env

REPO = Path(__file__).resolve().parents[2]
READY = "payplane stack ready"


def stack_env(run_dir: Path) -> dict[str, str]:
    env = free_ports_env(run_dir)  # never 4222 nor the stack's defaults
    env["PAYPLANE_START_TIMEOUT_S"] = "90"
    return env


class Output:
    """The stack's stdout+stderr, read on a thread so waits stay bounded."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert proc.stdout is not None
        stdout = proc.stdout

        def pump() -> None:
            for line in stdout:
                self._queue.put(line.rstrip("\n"))
            self._queue.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def wait_for(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {text!r} within {timeout_s}s:\n" + self.text())
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"the stack ended before {text!r}:\n" + self.text())
            self.lines.append(line)
            if text in line:
                return

    def text(self) -> str:
        return "\n".join(self.lines)


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200, url
        return str(resp.read().decode())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purposes
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return True


def processes_mentioning(text: str) -> list[str]:
    """Live processes whose command line or environment names `text` (Linux only)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if (text.encode() in cmdline or text.encode() in environ) and alive(int(proc.name)):
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{proc.name}: {command}")
    return found


@pytest.fixture
def running_stack(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Output, Path]]:
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "stack"],
        cwd=REPO,
        env=stack_env(run_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = Output(proc)
    try:
        yield proc, out, run_dir
    finally:
        if proc.poll() is None:  # the test failed before stopping it: leave nothing behind
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def book_one_payment(state: dict[str, Any]) -> None:
    token = DEV_CALLERS["storefront"]
    checkout_ch = channel(state["services"]["checkout"]["grpc"], token, tracing=False)
    # The books are finance's (and admin's) to read: storefronts have no ledger access.
    ledger_ch = channel(state["services"]["ledger"]["grpc"], DEV_CALLERS["finance"], tracing=False)
    try:
        paid = await checkout_pb2_grpc.CheckoutServiceStub(checkout_ch).CreatePayment(
            checkout_pb2.CreatePaymentRequest(
                amount=common_pb2.Money(amount_minor=4_200, currency="usd"),
                customer_ref="cust-stack",
                payment_method="pm_card_visa",
            ),
            metadata=idempotency_metadata("stack-test-1"),
            timeout=30,
        )
        assert paid.status == checkout_pb2.PAYMENT_STATUS_SUCCEEDED
        ledger = ledger_pb2_grpc.LedgerServiceStub(ledger_ch)
        deadline = time.monotonic() + 30
        while True:
            reply = await ledger.ListEntries(
                ledger_pb2.ListEntriesRequest(source_id=paid.id), timeout=10
            )
            if reply.entries:
                break
            assert time.monotonic() < deadline, f"the ledger never booked {paid.id}"
            await asyncio.sleep(0.1)
        assert reply.entries[0].source_type == "checkout.payment.succeeded"
        revenue = await ledger.GetBalance(
            ledger_pb2.GetBalanceRequest(account="revenue", currency="usd"), timeout=10
        )
        assert revenue.balance.amount_minor == -4_200
    finally:
        await checkout_ch.close(grace=None)
        await ledger_ch.close(grace=None)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
async def test_the_stack_runs_books_a_payment_and_stops_without_orphans(
    running_stack: tuple[subprocess.Popen[str], Output, Path],
) -> None:
    proc, out, run_dir = running_stack
    await asyncio.to_thread(out.wait_for, READY, 120)
    state = json.loads((run_dir / "stack.json").read_text())
    names = [p["name"] for p in state["processes"]]
    assert names[:2] == ["nats", "stripe_emulator"] and {"checkout", "ledger"} <= set(names)
    assert names[-1] == "console"  # started last, once the services it calls are up
    console_url = state["console"]["url"]
    assert any(line.startswith("console") and console_url in line for line in out.lines)
    assert any("sign-ins" in line and "alice/alice-dev-password" in line for line in out.lines)
    login = await asyncio.to_thread(fetch, f"{console_url}/login")
    assert "Sign in" in login
    for p in state["processes"]:  # the table names each one
        assert any(line.startswith(p["name"]) and str(p["pid"]) in line for line in out.lines)
    pids = [int(p["pid"]) for p in state["processes"]]
    assert all(alive(pid) for pid in pids)

    await book_one_payment(state)

    proc.send_signal(signal.SIGINT)
    code = await asyncio.to_thread(proc.wait, 90)
    await asyncio.to_thread(out.wait_for, "stack: stopped", 5)
    assert code == 0, out.text()
    assert [pid for pid in pids if alive(pid)] == []
    assert processes_mentioning(str(run_dir)) == []
    assert not (run_dir / "stack.json").exists()
    assert (run_dir / "logs" / "checkout.log").stat().st_size > 0


def test_the_dev_users_passwords_match_their_hashes() -> None:
    users = parse_users(",".join(f"{n}:{role}:{h}" for n, (role, _, h) in DEV_USERS.items()))
    assert {u.role.value for u in users.values()} == {"reviewer", "finance", "support", "admin"}
    for name, (_, password, hashed) in DEV_USERS.items():
        assert verify_password(password, hashed), name
        assert set(DEV_USERS[name][0:1]) <= set(DEV_CALLERS)  # each role has a dev caller
