"""Every kind of discrepancy, injected behind the ledger's back after a clean scenario: each is
found and classified, the certain ones healed with an audited adjusting entry, the others
queued for a human, and no correct entry is touched."""

from __future__ import annotations

from typing import Any

import grpc
import nats
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from ledger.domain.rules import settlement
from payplane.checkout.v1 import events_pb2
from payplane.common.v1 import common_pb2
from payplane.events import new_envelope, publish_envelope
from payplane.grpckit import idempotency_metadata, new_idempotency_key
from payplane.ledger.v1 import ledger_pb2

from .harness import Platform
from .ledger_scenario import (
    DAY,
    STANDARD_PRICING,
    advance_to_midnight,
    discrepancies,
    pay,
    reconcile,
    run_scenario,
    scenario_bookings,
    wait_booked,
)


def direct_charge(p: Platform, amount: int, currency: str, pm: str = "pm_card_visa") -> Any:
    """A payment made on Stripe without checkout: no event ever reaches the ledger."""
    intent = p.stripe.v1.payment_intents.create(
        params={
            "amount": amount,
            "currency": currency,
            "payment_method": pm,
            "payment_method_types": ["card"],
            "confirm": True,
        }
    )
    charge = p.stripe.v1.charges.retrieve(str(intent.latest_charge))
    return p.stripe.v1.balance_transactions.retrieve(str(charge.balance_transaction))


async def publish_paid(
    p: Platform, payment_id: str, bt_id: str, currency: str, gross: int, fee: int
) -> None:
    """Post a payment.succeeded straight onto checkout's stream (as a buggy producer would)."""
    m = lambda v: common_pb2.Money(amount_minor=v, currency=currency)  # noqa: E731
    msg = events_pb2.PaymentSucceeded(
        payment_id=payment_id,
        amount=m(gross),
        stripe_charge_id=f"ch_{payment_id}",
        settlement=events_pb2.Settlement(
            balance_transaction_id=bt_id, gross=m(gross), fee=m(fee), net=m(gross - fee),
            available_on=Timestamp(seconds=0),
        ),
    )  # fmt: skip
    nc = await nats.connect(p.nats.url)
    try:
        envelope = new_envelope("payment.succeeded", "checkout", payment_id, msg)
        await publish_envelope(nc.jetstream(), "checkout.payment.succeeded", envelope)
    finally:
        await nc.close()


async def all_entries(p: Platform) -> dict[str, ledger_pb2.JournalEntry]:
    stub = p.ledger("admin")
    out: dict[str, ledger_pb2.JournalEntry] = {}
    token = ""
    while True:
        page = await stub.ListEntries(
            ledger_pb2.ListEntriesRequest(page={"page_size": 500, "page_token": token})
        )
        out.update({e.id: e for e in page.entries})
        token = page.page.next_page_token
        if not token:
            return out


async def resolve(p: Platform, disc_id: str, resolution: str, reason: str) -> Any:
    return await p.ledger("admin").ResolveDiscrepancy(
        ledger_pb2.ResolveDiscrepancyRequest(
            discrepancy_id=disc_id, resolution=resolution, reason=reason
        ),
        metadata=idempotency_metadata(new_idempotency_key()),
        timeout=10,
    )


async def test_every_injected_discrepancy_is_found_classified_and_healed_or_queued(
    platform_on: Platform,
) -> None:
    p = platform_on
    ctl = p.emulator.control
    sc = await run_scenario(p)
    await wait_booked(p, scenario_bookings(sc))
    clean = await reconcile(p)
    assert clean.discrepancies_found == 0 and clean.tie_out[0].ties_out
    before = await all_entries(p)

    # Events that never reached the ledger: a payment and a disputed payment made on Stripe
    # while checkout's webhook endpoint was disabled (checkout never heard of them).
    endpoints = p.stripe.v1.webhook_endpoints
    endpoints.update(p.webhook_endpoint_id, params={"disabled": True})
    try:
        dropped = direct_charge(p, 3_300, "usd")
        disputed = direct_charge(p, 2_200, "usd", "pm_card_createDispute")
    finally:
        endpoints.update(p.webhook_endpoint_id, params={"disabled": False})
    dispute = p.stripe.v1.disputes.list(params={"charge": disputed.source}).data[0]
    dispute_bt = str(dispute.balance_transactions[0].id)
    # A producer that got the fee wrong, one that got a conversion wrong, one that got an
    # unconverted amount wrong, and one that booked a payment Stripe never saw.
    wrong_fee = direct_charge(p, 4_100, "usd")
    await publish_paid(p, "pay_wrongfee", wrong_fee.id, "usd", wrong_fee.amount, wrong_fee.fee + 50)
    wrong_fx = direct_charge(p, 3_000, "eur")
    await publish_paid(p, "pay_wrongfx", wrong_fx.id, "usd", wrong_fx.amount + 7, wrong_fx.fee)
    wrong_amount = direct_charge(p, 5_000, "usd")
    await publish_paid(
        p, "pay_wrongamount", wrong_amount.id, "usd", wrong_amount.amount - 100, wrong_amount.fee
    )
    await publish_paid(p, "pay_phantom", "txn_phantom0000000000000", "usd", 1_234, 66)
    await wait_booked(p, ["pay_wrongfee", "pay_wrongfx", "pay_wrongamount", "pay_phantom"])

    # A payout altered after Stripe made it: its amount no longer matches what it debited.
    advance_to_midnight(p, 2)
    ctl.advance(seconds=2)  # the daily sweep at 00:00:01
    newest = p.stripe.v1.payouts.list(params={"limit": 1}).data[0]
    assert newest.status == "pending" and newest.created > ctl.now() - DAY
    altered = str(newest.id)

    def alter(em: Any = p.emulator.app.em) -> None:
        po = em.store.get(altered, kind="payout")
        po["amount"] += 100
        em.store.save(po)

    p.emulator.call(alter)

    # Stripe's pricing changes behind the ledger's back (checkout books what Stripe charged).
    ctl.configure(pricing={"percent_bp": 320})
    try:
        overpriced = await pay(p, "inj-overpriced", 6_000, "usd", "pm_card_visa")
    finally:
        ctl.configure(pricing=STANDARD_PRICING)
    await wait_booked(p, [overpriced.id])
    overpriced_bt = p.stripe.v1.balance_transactions.list(
        params={"type": "charge", "limit": 1}
    ).data[0]
    assert overpriced_bt.source == overpriced.stripe_charge_id and overpriced_bt.status == "pending"
    # The ledger moved funds to available that Stripe still holds pending.
    await p.ledger_app.ledger.post(
        settlement(overpriced_bt.id, "usd", overpriced_bt.net, overpriced.id)
    )

    run = await reconcile(p)
    found = await discrepancies(p)
    got = {(d.kind, d.subject, d.evidence.get("against", ""), d.status) for d in found}
    expected = {
        ("missing_in_ledger", dropped.id, "", "healed"),
        ("missing_in_ledger", disputed.id, "", "healed"),
        ("unbooked_dispute", dispute_bt, "", "healed"),
        ("fee_mismatch", wrong_fee.id, "ledger", "healed"),
        ("fx_mismatch", wrong_fx.id, "ledger", "healed"),
        ("timing", overpriced_bt.id, "", "healed"),
        ("amount_mismatch", wrong_amount.id, "ledger", "open"),
        ("missing_in_stripe", "txn_phantom0000000000000", "", "open"),
        ("fee_mismatch", overpriced_bt.id, "pricing_model", "open"),
        ("payout_mismatch", altered, "", "open"),
    }
    assert got == expected, (got - expected, expected - got)
    by_kind = {k.kind: (k.found, k.healed, k.queued) for k in run.kinds}
    assert by_kind == {
        "missing_in_ledger": (2, 2, 0),
        "unbooked_dispute": (1, 1, 0),
        "fee_mismatch": (2, 1, 1),
        "fx_mismatch": (1, 1, 0),
        "timing": (1, 1, 0),
        "amount_mismatch": (1, 0, 1),
        "missing_in_stripe": (1, 0, 1),
        "payout_mismatch": (1, 0, 1),
    }
    assert run.discrepancies_found == 10
    pricing = next(d for d in found if d.evidence.get("against") == "pricing_model")
    assert int(pricing.evidence["expected_fee"]) == round(6_000 * 0.029) + 30 == 204
    assert pricing.amount.amount_minor == overpriced_bt.fee - 204 > 0
    payout = next(d for d in found if d.kind == "payout_mismatch")
    assert (
        payout.amount.amount_minor == -100
        and "balance transaction moved" in payout.evidence["problems"]
    )

    # No correct entry touched: every earlier entry is still there, unchanged; every new
    # entry is either a booking from Stripe's view, an event, or a correction that names its
    # discrepancy; each correction is linked to the transaction it heals.
    after = await all_entries(p)
    for entry_id, entry in before.items():
        assert after[entry_id] == entry
    healed = {d.id: d for d in found if d.status == "healed"}
    corrections = [e for e in after.values() if e.id not in before and "discrepancy" in e.refs]
    assert {e.refs["discrepancy"] for e in corrections} == set(healed)
    for e in corrections:
        d = healed[e.refs["discrepancy"]]
        assert d.adjusting_entry_id == e.id and e.refs["balance_transaction"] == d.subject
    assert await p.ledger_app.ledger.verify() == []

    # Re-running changes nothing: the queue holds the same records, nothing more is booked.
    rerun = await reconcile(p)
    assert {k.kind: (k.found, k.healed) for k in rerun.kinds} == {
        "amount_mismatch": (1, 0), "missing_in_stripe": (1, 0), "fee_mismatch": (1, 0),
        "payout_mismatch": (1, 0),
    }  # fmt: skip
    assert {d.id for d in await discrepancies(p, status="open")} == {
        d.id for d in found if d.status == "open"
    }
    assert len(await all_entries(p)) == len(after)

    # A human works the queue: a reason is required, each decision is audited.
    queue = {d.kind: d for d in found if d.status == "open"}
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await resolve(p, queue["amount_mismatch"].id, "heal", "")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await resolve(p, queue["payout_mismatch"].id, "heal", "no correction exists")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    fixed = await resolve(p, queue["amount_mismatch"].id, "heal", "checkout bug #12, confirmed")
    assert fixed.status == "healed" and fixed.adjusting_entry_id and fixed.resolved_by == "admin"
    reversed_ = await resolve(p, queue["missing_in_stripe"].id, "heal", "test event, reverse")
    assert reversed_.adjusting_entry_id
    await resolve(p, queue["fee_mismatch"].id, "accept", "Stripe's new rate card, accepted")
    await resolve(p, queue["payout_mismatch"].id, "dismiss", "emulator test tampering")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await resolve(p, queue["payout_mismatch"].id, "accept", "twice")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert p.ledger_app.queries is not None
    audit = await p.ledger_app.queries.audit(fixed.id)
    assert [a["action"] for a in audit] == ["found", "queued", "resolved"]
    assert audit[-1]["actor"] == "admin" and "confirmed" in audit[-1]["detail"]["reason"]

    final = await reconcile(p)
    assert final.discrepancies_found == 0, [(k.kind, k.found) for k in final.kinds]
    assert final.tie_out[0].ties_out, final.tie_out[0]
    assert await p.ledger_app.ledger.verify() == []
