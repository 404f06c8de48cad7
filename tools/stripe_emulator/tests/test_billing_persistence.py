"""With a SQLite store, billing survives a restart: what is due is rebuilt from the objects
(renewals on the emulator clock, test clocks' time and timers, meter usage)."""

from __future__ import annotations

from pathlib import Path

from stripe_emulator.config import Config
from stripe_emulator.testing import running_emulator
from stripe_emulator.tests.billing_helpers import (
    DAY,
    T0,
    advance,
    clock,
    customer,
    invoices_of,
    price,
    subscribe,
)

CONFIG = Config(global_rate=None, endpoint_rate=None, seed=11)


def test_renewals_and_clocks_resume_after_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "state.sqlite")
    with running_emulator(CONFIG, store_path=db) as emu:
        client = emu.stripe_client()
        plain = subscribe(client, customer(client).id, price(client).id)
        c = clock(client)
        on_clock = customer(client, clock_id=c.id)
        meter = client.v1.billing.meters.create(
            params={
                "display_name": "calls",
                "event_name": "calls",
                "default_aggregation": {"formula": "sum"},
            }
        )
        metered = client.v1.prices.create(
            params={
                "currency": "usd",
                "unit_amount": 2,
                "product": plain.items.data[0].price.product,
                "recurring": {"interval": "month", "usage_type": "metered", "meter": meter.id},
            }
        )
        clocked = client.v1.subscriptions.create(
            params={
                "customer": on_clock.id,
                "items": [{"price": price(client).id}, {"price": metered.id}],
            }
        )
        advance(client, c.id, T0 + 10 * DAY)
        client.v1.billing.meter_events.create(
            params={
                "event_name": "calls",
                "timestamp": T0 + 9 * DAY,
                "payload": {"stripe_customer_id": on_clock.id, "value": "50"},
            }
        )
    with running_emulator(CONFIG, store_path=db) as emu:
        client = emu.stripe_client()
        assert client.v1.test_helpers.test_clocks.retrieve(c.id).frozen_time == T0 + 10 * DAY
        advance(client, c.id, T0 + 31 * DAY + 7200)
        renewal = invoices_of(client, clocked.id)[-1]
        assert (renewal.status, renewal.total) == ("paid", 1000 + 100)
        emu.control.advance(days=32)
        renewed = invoices_of(client, plain.id)
        assert [i.status for i in renewed] == ["paid", "paid"]
