"""The Events API: retrieve, list filters, pagination, account scoping (through the SDK)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import stripe

from stripe_emulator.config import Config
from stripe_emulator.resources.accounts import account_object
from stripe_emulator.testing import EmulatorHandle, assert_fixture_keys

WEBHOOK_KEYS = ("webhook_retry_base_s", "webhook_max_attempts", "webhook_timeout_s")


@pytest.fixture(autouse=True)
def fast_webhooks(emu: EmulatorHandle) -> Iterator[None]:
    emu.control.configure(webhook_retry_base_s=0.05, webhook_max_attempts=2, webhook_timeout_s=2)
    yield
    defaults = Config().to_dict()
    emu.control.configure(**{k: defaults[k] for k in WEBHOOK_KEYS})


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/nobody-listens"


def test_events_record_changes_with_snapshots(client: stripe.StripeClient) -> None:
    cus = client.v1.customers.create(
        params={"email": "a@example.com"}, options={"idempotency_key": "ev-create-1"}
    )
    client.v1.customers.update(cus.id, params={"email": "b@example.com"})

    updated, created = client.v1.events.list().data
    assert (created.type, updated.type) == ("customer.created", "customer.updated")
    assert created.object == "event" and created.id.startswith("evt_")
    assert created.data.object.id == cus.id
    assert created.data.object.email == "a@example.com"  # a snapshot at event time
    assert "previous_attributes" not in created.data.to_dict()
    assert updated.data.object.email == "b@example.com"
    assert updated.data.previous_attributes.to_dict() == {"email": "a@example.com"}
    assert created.request.idempotency_key == "ev-create-1"
    assert created.request.id.startswith("req_")
    assert created.pending_webhooks == 0 and created.livemode is False

    fetched = client.v1.events.retrieve(created.id)
    assert fetched.to_dict() == created.to_dict()
    assert_fixture_keys(fetched, "event")
    assert_fixture_keys(updated, "event")


def test_type_filters(client: stripe.StripeClient) -> None:
    cus = client.v1.customers.create(params={"email": "t@example.com"})
    client.v1.customers.update(cus.id, params={"name": "T"})
    client.v1.customers.delete(cus.id)

    def types(params: dict[str, object]) -> list[str]:
        return [e.type for e in client.v1.events.list(params=params).data]

    assert types({"type": "customer.updated"}) == ["customer.updated"]
    assert types({"type": "customer.*"}) == [
        "customer.deleted", "customer.updated", "customer.created",
    ]  # fmt: skip
    assert types({"type": "charge.succeeded"}) == []
    assert types({"types": ["customer.created", "customer.deleted"]}) == [
        "customer.deleted", "customer.created",
    ]  # fmt: skip
    with pytest.raises(stripe.InvalidRequestError) as err:
        types({"type": "customer.created", "types": ["customer.deleted"]})
    assert err.value.http_status == 400 and err.value.param == "types"
    with pytest.raises(stripe.InvalidRequestError) as err:
        types({"typo": "customer.created"})
    assert err.value.http_status == 400 and err.value.param == "typo"


def test_pagination_and_created_filter(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    first = [client.v1.customers.create(params={"email": f"p{i}@example.com"}) for i in range(3)]
    later = emu.control.advance(seconds=120)
    second = [client.v1.customers.create(params={"email": f"q{i}@example.com"}) for i in range(2)]
    ids = [e.data.object.id for e in client.v1.events.list(params={"limit": 100}).data]
    assert ids == [c.id for c in reversed(first + second)]

    page = client.v1.events.list(params={"limit": 2})
    assert page.has_more and len(page.data) == 2
    page2 = client.v1.events.list(params={"limit": 2, "starting_after": page.data[-1].id})
    page3 = client.v1.events.list(params={"limit": 2, "starting_after": page2.data[-1].id})
    assert not page3.has_more and len(page3.data) == 1
    walked = [e.id for p in (page, page2, page3) for e in p.data]
    assert len(set(walked)) == 5
    back = client.v1.events.list(params={"limit": 2, "ending_before": page2.data[0].id})
    assert [e.id for e in back.data] == [e.id for e in page.data]
    everything = [e.id for e in client.v1.events.list(params={"limit": 2}).auto_paging_iter()]
    assert everything == walked

    recent = client.v1.events.list(params={"created": {"gte": later}})
    assert [e.data.object.id for e in recent.data] == [c.id for c in reversed(second)]
    older = client.v1.events.list(params={"created": {"lt": later}})
    assert len(older.data) == 3

    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.events.list(params={"starting_after": "evt_unknown"})
    assert err.value.http_status == 404


def test_events_older_than_30_days_leave_the_list(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    client.v1.customers.create(params={"email": "old@example.com"})
    emu.control.advance(days=31)
    new = client.v1.customers.create(params={"email": "new@example.com"})
    assert [e.data.object.id for e in client.v1.events.list().data] == [new.id]


def test_retrieve_unknown_event(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.events.retrieve("evt_does_not_exist")
    assert err.value.http_status == 404 and err.value.code == "resource_missing"


def test_delivery_success_filter(client: stripe.StripeClient) -> None:
    quiet = client.v1.customers.create(params={"email": "quiet@example.com"})
    client.v1.webhook_endpoints.create(
        params={"url": closed_port_url(), "enabled_events": ["customer.updated"]}
    )
    client.v1.customers.update(quiet.id, params={"name": "Q"})
    updated = client.v1.events.list(params={"type": "customer.updated"}).data[0]
    assert updated.pending_webhooks == 1

    deadline = time.monotonic() + 10
    while client.v1.events.retrieve(updated.id).pending_webhooks and time.monotonic() < deadline:
        time.sleep(0.02)
    assert client.v1.events.retrieve(updated.id).pending_webhooks == 0  # given up

    ok = client.v1.events.list(params={"delivery_success": True}).data
    failed = client.v1.events.list(params={"delivery_success": False}).data
    assert [e.type for e in ok] == ["customer.created"]
    assert [e.id for e in failed] == [updated.id]


def test_connected_account_events_are_scoped(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    acct = "acct_1ConnectedEvents000"
    em = emu.app.em
    platform = em.config.platform_account
    emu.call(lambda: em.store.insert(platform, account_object(acct, em.now(), "US", "usd")))
    theirs = client.v1.customers.create(
        params={"email": "c@example.com"}, options={"stripe_account": acct}
    )
    ours = client.v1.customers.create(params={"email": "p@example.com"})

    connected = client.v1.events.list(options={"stripe_account": acct}).data
    assert [(e.account, e.data.object.id) for e in connected] == [(acct, theirs.id)]
    platform_events = client.v1.events.list().data
    assert [e.data.object.id for e in platform_events] == [ours.id]
    assert "account" not in platform_events[0].to_dict()
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.events.retrieve(connected[0].id)
    assert client.v1.events.retrieve(connected[0].id, options={"stripe_account": acct}).account
