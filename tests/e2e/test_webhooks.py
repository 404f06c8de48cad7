"""3-D Secure payments complete through Stripe's webhooks, whatever their order or count."""

from __future__ import annotations

from payplane.checkout.v1 import checkout_pb2
from payplane.ledger.v1 import ledger_pb2

from .harness import Platform, eventually


async def _statuses(platform: Platform, ids: list[str]) -> dict[str, int]:
    stub = platform.checkout()
    out = {}
    for payment_id in ids:
        p = await stub.GetPayment(checkout_pb2.GetPaymentRequest(payment_id=payment_id))
        out[payment_id] = p.status
    return out


async def test_shuffled_duplicated_webhooks_end_in_the_right_state(platform: Platform) -> None:
    control = platform.emulator.control
    control.faults(webhook_duplicate_rate=1.0, webhook_shuffle=True)
    pending = []
    for i in range(6):
        p = await platform.pay(f"k-3ds-{i}", amount=1_000 + i, pm="pm_card_threeDSecure2Required")
        assert p.status == checkout_pb2.PAYMENT_STATUS_REQUIRES_ACTION
        assert p.next_action.type and p.next_action.client_secret
        pending.append(p)
    passed = [p for i, p in enumerate(pending) if i % 3 != 0]
    failed = [p for i, p in enumerate(pending) if i % 3 == 0]
    for p in passed:
        control.call(
            "POST", f"/_emulator/payment_intents/{p.stripe_payment_intent_id}/three_d_secure",
            {"outcome": "pass"},
        )  # fmt: skip
    for p in failed:
        control.call(
            "POST", f"/_emulator/payment_intents/{p.stripe_payment_intent_id}/three_d_secure",
            {"outcome": "fail"},
        )  # fmt: skip
    want = {p.id: checkout_pb2.PAYMENT_STATUS_SUCCEEDED for p in passed}
    want.update({p.id: checkout_pb2.PAYMENT_STATUS_FAILED for p in failed})
    final = await eventually(lambda: _statuses(platform, list(want)), lambda s: s == want)
    assert final == want
    # The books: each succeeded payment booked once, none of the failed ones.
    expected_gross = sum(p.amount.amount_minor for p in passed)
    await eventually(lambda: platform.balance("revenue"), lambda v: v == -expected_gross)
    ledger = platform.ledger()
    for p in pending:
        entries = await ledger.ListEntries(ledger_pb2.ListEntriesRequest(source_id=p.id))
        assert len(entries.entries) == (1 if p in passed else 0)
    # The faults really happened: every event arrived twice.
    deliveries = platform.webhook_deliveries()
    assert any(d["duplicate"] for d in deliveries)
    assert len({d["event"] for d in deliveries}) < len(deliveries)
