"""Log hygiene: the stack as processes (`python -m stack`), driven over gRPC with card numbers
and secrets where they do not belong and through the flows that handle client secrets; then
every process's log (and the stack's own output) holds no card number (Luhn-valid, 13 to 19
digits), no sk_/rk_/whsec_ secret and no client secret; nor does any span the processes
exported (names, attributes, events such as recorded exceptions), received by a real OTLP
receiver as Jaeger would receive them.

Generic over the stack: every log file in the run directory is read, whatever services run.
The stack runs at DEBUG, where the most is written.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest

from payplane.checkout.v1 import checkout_pb2, checkout_pb2_grpc
from payplane.common.v1 import common_pb2
from payplane.grpckit import channel, idempotency_metadata
from payplane.tracing import luhn_valid
from payplane.tracing.testing import CollectedSpan, OtlpCollector
from stack.config import DEV_CALLERS, DEV_STRIPE_KEY
from stack.launch import launched_stack_async

CARDS = ["4242424242424242", "4000002500003155", "5555555555554444", "378282246310005"]
SPACED = "4000 0025 0000 3155"
# What an attacker or a careless caller might send where ids and free text belong.
NASTY: list[str] = [*CARDS, SPACED, "4000-0000-0000-0077", DEV_STRIPE_KEY,
                    "rk_live_0123456789abcdef", "whsec_0123456789abcdefABCDEF",
                    "pi_3Pgc72B7WZ01zgkW1a2b3c4d_secret_Xy7Zq9Wv8Ut6Sr5"]  # fmt: skip

# A digit run standing as a token of its own: inside an alphanumeric token (a hex span id, a
# request id) a run of digits is chance, not a card number.
_DIGIT_RUN = re.compile(r"(?<![0-9A-Za-z])\d(?:[ -]?\d){12,18}(?![0-9A-Za-z])")
_PATTERNS = {
    "secret key": re.compile(r"\b(?:sk|rk)_(?:test|live)_[A-Za-z0-9]"),
    "webhook secret": re.compile(r"\bwhsec_[A-Za-z0-9]"),
    "client secret": re.compile(r"\b(?:pi|seti|src)_[A-Za-z0-9]+_secret_[A-Za-z0-9]"),
}


def card_numbers_in(text: str) -> list[str]:
    found = []
    for match in _DIGIT_RUN.finditer(text):
        digits = re.sub(r"[ -]", "", match.group(0))
        if luhn_valid(digits):
            found.append(match.group(0))
    return found


def leaks(text: str, known_secrets: list[str]) -> list[str]:
    found = [f"card number {n!r}" for n in card_numbers_in(text)]
    for what, pattern in _PATTERNS.items():
        found += [f"{what} at {m.start()}: {text[m.start():m.start() + 40]!r}"
                  for m in pattern.finditer(text)]  # fmt: skip
    found += [f"known secret {s[:8]}..." for s in known_secrets if s and s in text]
    return found


async def _drive(state: dict[str, Any]) -> None:
    """Payments, refunds and reads with nasty inputs; every outcome is allowed but INTERNAL."""
    ch = channel(state["services"]["checkout"]["grpc"], DEV_CALLERS["storefront"], tracing=False)
    stub = checkout_pb2_grpc.CheckoutServiceStub(ch)
    n = 0

    async def call(method: Any, request: Any, mutating: bool = True) -> Any:
        nonlocal n
        n += 1
        meta = idempotency_metadata(f"hygiene-{n}") if mutating else None
        try:
            return await method(request, metadata=meta, timeout=30)
        except grpc.aio.AioRpcError as exc:
            assert exc.code() != grpc.StatusCode.INTERNAL, exc.details()
            return None

    def pay(pm: str, amount: int = 2_000, **extra: Any) -> checkout_pb2.CreatePaymentRequest:
        return checkout_pb2.CreatePaymentRequest(
            amount=common_pb2.Money(amount_minor=amount, currency="usd"),
            customer_ref=extra.pop("customer_ref", "cust-hygiene"),
            payment_method=pm,
            **extra,
        )

    try:
        for bad in NASTY:  # as the payment method, the customer, the description, metadata
            await call(stub.CreatePayment, pay(bad))
            await call(
                stub.CreatePayment,
                pay("pm_card_visa", customer_ref=bad, description=f"card {bad}",
                    metadata={"note": bad}, email=f"{bad.replace(' ', '')}@example.com"),
            )  # fmt: skip
            await call(stub.GetPayment, checkout_pb2.GetPaymentRequest(payment_id=bad), False)
            await call(
                stub.RefundPayment, checkout_pb2.RefundPaymentRequest(payment_id=bad, reason=bad)
            )
        paid = await call(stub.CreatePayment, pay("pm_card_visa", amount=5_000))
        assert paid is not None and paid.status == checkout_pb2.PAYMENT_STATUS_SUCCEEDED
        await call(stub.RefundPayment, checkout_pb2.RefundPaymentRequest(payment_id=paid.id))
        challenged = await call(stub.CreatePayment, pay("pm_card_threeDSecure2Required"))
        assert challenged is not None and challenged.next_action.client_secret
        await call(stub.GetPayment, checkout_pb2.GetPaymentRequest(payment_id=challenged.id), False)
        await call(stub.CreatePayment, pay("pm_card_chargeDeclined"))
        await call(stub.ListPayments, checkout_pb2.ListPaymentsRequest(), False)
        await asyncio.sleep(1.0)  # let webhooks and events of the above land in the logs
    finally:
        await ch.close(grace=None)


def span_text(span: CollectedSpan) -> str:
    """Everything a trace backend shows of a span, as text."""
    parts = [span.name, span.status_message, json.dumps(dict(span.attributes), default=str)]
    parts += [f"{name} {json.dumps(dict(attrs), default=str)}" for name, attrs in span.events]
    return "\n".join(parts)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="runs the stack's processes")
async def test_log_hygiene_under_nasty_inputs(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    async with OtlpCollector() as collector:
        env = {"PAYPLANE_LOG_LEVEL": "DEBUG", "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint}
        async with launched_stack_async(run_dir, env) as state:
            await _drive(state)
        spans = collector.spans()  # the services flushed them as they stopped
    secrets = [DEV_STRIPE_KEY]
    endpoints = run_dir / "webhook_endpoints.json"
    if endpoints.exists():
        secrets += [e["secret"] for e in json.loads(endpoints.read_text()).values()]
    logs = [*sorted((run_dir / "logs").glob("*.log")), run_dir / "stack.out"]
    assert {p.stem for p in logs} >= {"checkout", "ledger", "stripe_emulator", "nats"}
    found = {p.name: leaks(p.read_text(errors="replace"), secrets) for p in logs}
    assert {name: f for name, f in found.items() if f} == {}
    # The run did log: the check above read real output, not empty files.
    assert (run_dir / "logs" / "checkout.log").stat().st_size > 0
    assert {s.service_name for s in spans} >= {"checkout", "ledger"}
    traced = {str(s): leaks(span_text(s), secrets) for s in spans}
    assert {name: f for name, f in traced.items() if f} == {}
