"""Manual invoices and invoice items; finalize, pay, send, void, uncollectible, delete."""

from __future__ import annotations

import pytest
import stripe

from stripe_emulator.testing import EmulatorHandle, assert_fixture_keys
from stripe_emulator.tests.billing_helpers import customer, invoice_pi, price, types_since


def _draft(client: stripe.StripeClient, cus_id: str, *amounts: int, **extra: object) -> str:
    for amount in amounts:
        client.v1.invoice_items.create(
            params={
                "customer": cus_id,
                "amount": amount,
                "currency": "usd",
                "description": f"item {amount}",
            }
        )
    inv = client.v1.invoices.create(
        params={"customer": cus_id, "pending_invoice_items_behavior": "include", **extra}
    )
    return str(inv.id)


def test_manual_invoice_from_items(client: stripe.StripeClient) -> None:
    cus = customer(client)
    ii = client.v1.invoice_items.create(
        params={"customer": cus.id, "amount": 1500, "currency": "usd", "description": "setup"}
    )
    assert_fixture_keys(ii, "invoiceitem")
    assert ii.invoice is None and ii.parent is None
    one_time = price(client, 250, interval=None, name="Sticker")
    client.v1.invoice_items.create(
        params={"customer": cus.id, "pricing": {"price": one_time.id}, "quantity": 4}
    )
    excluded = client.v1.invoices.create(params={"customer": cus.id})
    assert excluded.lines.data == [] and excluded.total == 0  # exclude is the default
    client.v1.invoices.delete(excluded.id)

    inv = client.v1.invoices.create(
        params={
            "customer": cus.id,
            "pending_invoice_items_behavior": "include",
            "metadata": {"order": "42"},
        }
    )
    assert (inv.status, inv.auto_advance, inv.billing_reason, inv.parent) == (
        "draft",
        False,
        "manual",
        None,
    )
    assert (inv.subtotal, inv.total, inv.amount_due) == (2500, 2500, 2500)
    assert inv.number is None and inv.automatically_finalizes_at is None
    lines = client.v1.invoices.line_items.list(inv.id).data
    assert [ln.parent.type for ln in lines] == ["invoice_item_details"] * 2
    assert sorted(ln.amount for ln in lines) == [1000, 1500]

    final = client.v1.invoices.finalize_invoice(inv.id)
    assert final.status == "open" and final.number.endswith("-0001")
    assert final.hosted_invoice_url and final.status_transitions.finalized_at
    paid = client.v1.invoices.pay(inv.id)
    assert (paid.status, paid.amount_paid, paid.amount_remaining) == ("paid", 2500, 0)
    pi = client.v1.payment_intents.retrieve(invoice_pi(client, inv.id))
    assert (pi.amount, pi.description, pi.status) == (2500, "Payment for Invoice", "succeeded")
    second = _draft(client, cus.id, 700)
    assert client.v1.invoices.finalize_invoice(second).number.endswith("-0002")
    assert types_since(client, None, ("invoice.",)) == [
        "invoice.created",
        "invoice.deleted",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice.created",
        "invoice.finalized",
    ]


def test_declined_payment_then_another_card(client: stripe.StripeClient) -> None:
    cus = customer(client, pm="pm_card_chargeDeclinedInsufficientFunds")
    inv_id = _draft(client, cus.id, 3000)
    with pytest.raises(stripe.CardError) as err:
        client.v1.invoices.pay(inv_id)
    assert err.value.code == "card_declined"
    failed = client.v1.invoices.retrieve(inv_id)
    assert (failed.status, failed.attempt_count, failed.attempted) == ("open", 1, True)
    assert client.v1.customers.retrieve(cus.id).delinquent is True
    good = client.v1.payment_methods.attach("pm_card_visa", params={"customer": cus.id})
    paid = client.v1.invoices.pay(inv_id, params={"payment_method": good.id})
    assert paid.status == "paid" and paid.attempt_count == 1
    assert client.v1.customers.retrieve(cus.id).delinquent is False
    kinds = types_since(client, None, ("invoice.",))
    assert kinds.index("invoice.payment_failed") < kinds.index("invoice.paid")


def test_send_void_uncollectible_delete(client: stripe.StripeClient) -> None:
    cus = customer(client, pm=None)
    inv_id = _draft(client, cus.id, 1200, collection_method="send_invoice", days_until_due=30)
    sent = client.v1.invoices.send_invoice(inv_id)
    assert (
        sent.status == "open" and sent.due_date == sent.status_transitions.finalized_at + 30 * 86400
    )
    assert sent.next_payment_attempt is None
    voided = client.v1.invoices.void_invoice(inv_id)
    assert voided.status == "void" and voided.status_transitions.voided_at
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.pay(inv_id)

    other = _draft(client, cus.id, 900, collection_method="send_invoice", days_until_due=7)
    client.v1.invoices.finalize_invoice(other)
    bad = client.v1.invoices.mark_uncollectible(other)
    assert bad.status == "uncollectible"
    out = client.v1.invoices.pay(other, params={"paid_out_of_band": True})
    assert out.status == "paid" and out.amount_paid == 900

    draft = _draft(client, cus.id, 100)
    assert_fixture_keys(client.v1.invoices.delete(draft), "deleted_invoice")
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.delete(other)
    pending = client.v1.invoice_items.list(params={"customer": cus.id, "pending": True}).data
    assert [i.amount for i in pending] == [100]  # the deleted draft's item is pending again
    assert_fixture_keys(client.v1.invoice_items.delete(pending[0].id), "deleted_invoiceitem")
    kinds = types_since(client, None, ("invoice.",))
    for kind in (
        "invoice.sent",
        "invoice.voided",
        "invoice.marked_uncollectible",
        "invoice.deleted",
    ):
        assert kind in kinds


def test_auto_advance_finalizes_after_an_hour(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    cus = customer(client)
    inv_id = _draft(client, cus.id, 800, auto_advance=True)
    inv = client.v1.invoices.retrieve(inv_id)
    assert inv.automatically_finalizes_at == inv.created + 3600
    emu.control.advance(seconds=3500)
    assert client.v1.invoices.retrieve(inv_id).status == "draft"
    emu.control.advance(seconds=200)
    done = client.v1.invoices.retrieve(inv_id)
    assert (done.status, done.amount_paid) == ("paid", 800)


def test_draft_lines_follow_invoice_item_changes(client: stripe.StripeClient) -> None:
    cus = customer(client)
    inv = client.v1.invoices.create(params={"customer": cus.id, "currency": "usd"})
    ii = client.v1.invoice_items.create(
        params={"customer": cus.id, "invoice": inv.id, "amount": 400, "currency": "usd"}
    )
    assert client.v1.invoices.retrieve(inv.id).total == 400
    client.v1.invoice_items.update(ii.id, params={"amount": 650})
    assert client.v1.invoices.retrieve(inv.id).total == 650
    client.v1.invoices.finalize_invoice(inv.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoice_items.update(ii.id, params={"amount": 1})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoice_items.create(
            params={"customer": cus.id, "invoice": inv.id, "amount": 1, "currency": "usd"}
        )


def test_small_amounts_carry_to_the_balance(client: stripe.StripeClient) -> None:
    cus = customer(client)
    inv = client.v1.invoices.finalize_invoice(_draft(client, cus.id, 30))
    assert (inv.status, inv.amount_due, inv.ending_balance) == ("paid", 0, 30)
    assert client.v1.customers.retrieve(cus.id).balance == 30
    nxt = client.v1.invoices.finalize_invoice(_draft(client, cus.id, 1000))
    assert (nxt.starting_balance, nxt.amount_due, nxt.ending_balance) == (30, 1030, 0)


def test_invoice_lists(client: stripe.StripeClient) -> None:
    a, b = customer(client), customer(client)
    ia = _draft(client, a.id, 100)
    ib = _draft(client, b.id, 200)
    client.v1.invoices.finalize_invoice(ib)
    ids = lambda **kw: [i.id for i in client.v1.invoices.list(params=kw).data]  # noqa: E731
    assert ids() == [ib, ia]
    assert ids(customer=a.id) == [ia]
    assert ids(status="open") == [ib]
    assert ids(status="draft") == [ia]
