"""Webhook endpoints and signed, retried, fault-injected webhook delivery (through the SDK)."""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import stripe

from stripe_emulator.config import Config
from stripe_emulator.resources.accounts import account_object
from stripe_emulator.testing import EmulatorHandle, assert_fixture_keys

WEBHOOK_KEYS = (
    "webhook_retry_base_s",
    "webhook_retry_factor",
    "webhook_retry_max_s",
    "webhook_max_attempts",
    "webhook_timeout_s",
)


class Receiver:
    """A webhook receiver on a free 127.0.0.1 port, answering a scripted list of statuses."""

    def __init__(self, statuses: list[int] | None = None, delays: list[float] | None = None):
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses = list(statuses or [])
        self.delays = list(delays or [])
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    delay = receiver.delays.pop(0) if receiver.delays else 0.0
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.in_flight += 1
                    receiver.most_in_flight = max(receiver.most_in_flight, receiver.in_flight)
                if delay:
                    time.sleep(delay)
                with receiver.lock:
                    receiver.in_flight -= 1
                    receiver.requests.append((dict(self.headers.items()), body))
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def received(self) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return list(self.requests)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received()]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture(autouse=True)
def fast_webhooks(emu: EmulatorHandle) -> Iterator[None]:
    emu.control.configure(
        webhook_retry_base_s=0.05,
        webhook_retry_factor=2.0,
        webhook_retry_max_s=0.2,
        webhook_max_attempts=6,
        webhook_timeout_s=2.0,
    )
    yield
    defaults = Config().to_dict()
    emu.control.configure(**{k: defaults[k] for k in WEBHOOK_KEYS})


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(statuses: list[int] | None = None, delays: list[float] | None = None) -> Receiver:
        r = Receiver(statuses, delays)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def deliveries(emu: EmulatorHandle, endpoint_id: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = emu.control.call(
        "GET", f"/_emulator/webhook_endpoints/{endpoint_id}/deliveries"
    )["data"]
    return result


def settled(client: stripe.StripeClient, event_id: str) -> bool:
    return client.v1.events.retrieve(event_id).pending_webhooks == 0


def last_event(client: stripe.StripeClient, type_: str) -> stripe.Event:
    return client.v1.events.list(params={"type": type_, "limit": 1}).data[0]


# -- the endpoint resource -------------------------------------------------------------------
def test_endpoint_crud_and_secret_only_on_create(client: stripe.StripeClient) -> None:
    created = client.v1.webhook_endpoints.create(
        params={
            "url": "https://example.com/hooks",
            "enabled_events": ["charge.succeeded", "charge.failed"],
            "description": "main",
            "metadata": {"team": "payments"},
            "api_version": "2025-04-30.basil",
        }
    )
    assert created.id.startswith("we_") and created.object == "webhook_endpoint"
    assert created.secret.startswith("whsec_") and created.status == "enabled"
    assert created.enabled_events == ["charge.succeeded", "charge.failed"]
    assert created.api_version == "2025-04-30.basil"
    assert_fixture_keys(created, "webhook_endpoint")

    fetched = client.v1.webhook_endpoints.retrieve(created.id)
    assert "secret" not in fetched.to_dict() and fetched.url == "https://example.com/hooks"
    assert_fixture_keys(fetched, "webhook_endpoint")
    assert all("secret" not in e.to_dict() for e in client.v1.webhook_endpoints.list().data)

    updated = client.v1.webhook_endpoints.update(
        created.id,
        params={
            "url": "http://127.0.0.1:9/x",
            "enabled_events": ["*"],
            "disabled": True,
            "description": "renamed",
            "metadata": {"team": "", "k": "v"},
        },
    )
    assert updated.status == "disabled" and updated.enabled_events == ["*"]
    assert updated.url == "http://127.0.0.1:9/x" and updated.description == "renamed"
    assert updated.metadata.to_dict() == {"k": "v"}
    again = client.v1.webhook_endpoints.update(created.id, params={"disabled": False})
    assert again.status == "enabled"

    deleted = client.v1.webhook_endpoints.delete(created.id)
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.webhook_endpoints.retrieve(created.id)
    assert err.value.http_status == 404 and err.value.code == "resource_missing"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"enabled_events": ["*"]}, "url"),
        ({"url": "ftp://example.com/x", "enabled_events": ["*"]}, "url"),
        ({"url": "not a url", "enabled_events": ["*"]}, "url"),
        ({"url": "https://example.com/x"}, "enabled_events"),
        ({"url": "https://example.com/x", "enabled_events": ["customer.creatd"]}, "enabled_events"),
        ({"url": "https://example.com/x", "enabled_events": ["*"], "connekt": "true"}, "connekt"),
        (
            {"url": "https://example.com/x", "enabled_events": ["*"], "api_version": "x"},
            "api_version",
        ),
    ],
)
def test_endpoint_validation(
    client: stripe.StripeClient, params: dict[str, Any], param: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.webhook_endpoints.create(params=params)
    assert err.value.http_status == 400 and err.value.param == param


def test_at_most_16_endpoints(client: stripe.StripeClient) -> None:
    made = [
        client.v1.webhook_endpoints.create(
            params={"url": f"https://example.com/{i}", "enabled_events": ["*"]}
        )
        for i in range(16)
    ]
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.webhook_endpoints.create(
            params={"url": "https://example.com/17", "enabled_events": ["*"]}
        )
    assert err.value.http_status == 400
    page = client.v1.webhook_endpoints.list(params={"limit": 100})
    assert len(page.data) == 16
    client.v1.webhook_endpoints.delete(made[0].id)
    client.v1.webhook_endpoints.create(
        params={"url": "https://example.com/17", "enabled_events": ["*"]}
    )


# -- delivery -------------------------------------------------------------------------------
def test_signed_delivery_verifies_with_the_sdk(
    emu: EmulatorHandle, client: stripe.StripeClient, receivers: Callable[..., Receiver]
) -> None:
    rx = receivers()
    ep = client.v1.webhook_endpoints.create(
        params={"url": rx.url, "enabled_events": ["customer.created"]}
    )
    cus = client.v1.customers.create(params={"email": "hook@example.com"})
    headers, body = wait_for(rx.received, what="a delivery")[0]
    sig = headers["Stripe-Signature"]
    assert sig.startswith("t=") and ",v1=" in sig
    assert headers["User-Agent"].startswith("Stripe/1.0")
    assert headers["Content-Type"].startswith("application/json")

    event = stripe.Webhook.construct_event(body, sig, ep.secret)
    assert event.type == "customer.created" and event.data.object.id == cus.id
    assert event.pending_webhooks == 1 and event.id.startswith("evt_")

    tampered = body.replace(b"hook@example.com", b"evil@example.com")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(tampered, sig, ep.secret)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, sig, "whsec_wrong")

    wait_for(lambda: settled(client, event.id), what="pending_webhooks to reach 0")
    stored = client.v1.events.retrieve(event.id)
    assert_fixture_keys(stored, "event")
    log = deliveries(emu, ep.id)
    assert [(a["event"], a["attempt"], a["status"], a["outcome"]) for a in log] == [
        (event.id, 1, 200, "succeeded")
    ]


def test_enabled_events_filter_wildcard_and_disabled(
    client: stripe.StripeClient, receivers: Callable[..., Receiver]
) -> None:
    only_updates, everything, disabled = receivers(), receivers(), receivers()
    client.v1.webhook_endpoints.create(
        params={"url": only_updates.url, "enabled_events": ["customer.updated"]}
    )
    client.v1.webhook_endpoints.create(params={"url": everything.url, "enabled_events": ["*"]})
    off = client.v1.webhook_endpoints.create(params={"url": disabled.url, "enabled_events": ["*"]})
    client.v1.webhook_endpoints.update(off.id, params={"disabled": True})

    cus = client.v1.customers.create(params={"email": "f@example.com"})
    client.v1.customers.update(cus.id, params={"name": "F"})
    client.v1.customers.delete(cus.id)

    wait_for(lambda: len(everything.received()) == 3, what="three deliveries")
    events = client.v1.events.list().data
    assert len(events) == 3
    ids = [e.id for e in events]
    wait_for(lambda: all(settled(client, i) for i in ids), what="settled events")
    assert sorted(e["type"] for e in everything.events()) == [
        "customer.created", "customer.deleted", "customer.updated",
    ]  # fmt: skip
    assert [e["type"] for e in only_updates.events()] == ["customer.updated"]
    assert only_updates.events()[0]["data"]["previous_attributes"] == {"name": None}
    assert disabled.received() == []


def test_failing_endpoint_is_retried_until_it_answers(
    emu: EmulatorHandle, client: stripe.StripeClient, receivers: Callable[..., Receiver]
) -> None:
    rx = receivers(statuses=[500, 500, 200])
    ep = client.v1.webhook_endpoints.create(params={"url": rx.url, "enabled_events": ["*"]})
    client.v1.customers.create(params={"email": "retry@example.com"})
    event = last_event(client, "customer.created")
    assert event.pending_webhooks == 1
    wait_for(lambda: settled(client, event.id), what="pending_webhooks to reach 0")

    log = deliveries(emu, ep.id)
    assert [(a["attempt"], a["status"], a["outcome"]) for a in log] == [
        (1, 500, "failed"), (2, 500, "failed"), (3, 200, "succeeded"),
    ]  # fmt: skip
    assert all(a["event"] == event.id and a["type"] == "customer.created" for a in log)
    assert log[0]["next_retry_at"] is not None and log[2]["next_retry_at"] is None
    assert len(rx.received()) == 3
    for headers, body in rx.received():  # every attempt is signed on its own
        assert stripe.Webhook.construct_event(body, headers["Stripe-Signature"], ep.secret)
    listed = client.v1.events.list(params={"delivery_success": True}).data
    assert event.id in [e.id for e in listed]


def test_redirect_and_timeout_count_as_failures(
    emu: EmulatorHandle, client: stripe.StripeClient, receivers: Callable[..., Receiver]
) -> None:
    emu.control.configure(webhook_timeout_s=0.3)
    rx = receivers(statuses=[302, 200, 200], delays=[0.0, 1.5])
    ep = client.v1.webhook_endpoints.create(params={"url": rx.url, "enabled_events": ["*"]})
    client.v1.customers.create(params={"email": "slow@example.com"})
    event = last_event(client, "customer.created")
    wait_for(lambda: settled(client, event.id), what="pending_webhooks to reach 0")
    log = deliveries(emu, ep.id)
    assert [(a["status"], a["error"]) for a in log] == [
        (302, None), (None, "timeout"), (200, None),
    ]  # fmt: skip


def test_gives_up_after_max_attempts_then_manual_redelivery(
    emu: EmulatorHandle, client: stripe.StripeClient, receivers: Callable[..., Receiver]
) -> None:
    emu.control.configure(webhook_max_attempts=3)
    rx = receivers(statuses=[503, 503, 503])
    ep = client.v1.webhook_endpoints.create(params={"url": rx.url, "enabled_events": ["*"]})
    client.v1.customers.create(params={"email": "down@example.com"})
    event = last_event(client, "customer.created")
    wait_for(lambda: settled(client, event.id), what="the endpoint to be given up")
    assert [a["status"] for a in deliveries(emu, ep.id)] == [503, 503, 503]
    failed = client.v1.events.list(params={"delivery_success": False}).data
    assert [e.id for e in failed] == [event.id]

    sent = emu.control.call("POST", f"/_emulator/webhook_endpoints/{ep.id}/redeliver", {})
    assert sent["data"] == [event.id]
    wait_for(lambda: len(rx.received()) == 4, what="the redelivery")
    wait_for(lambda: deliveries(emu, ep.id)[-1]["outcome"] == "succeeded", what="logged")
    assert deliveries(emu, ep.id)[-1]["manual"] is True
    assert client.v1.events.list(params={"delivery_success": False}).data == []

    one = emu.control.call(
        "POST", f"/_emulator/webhook_endpoints/{ep.id}/redeliver", {"event": event.id}
    )
    assert one["data"] == [event.id]
    wait_for(lambda: len(rx.received()) == 5, what="the second redelivery")
    with pytest.raises(RuntimeError, match="404"):
        emu.control.call(
            "POST", f"/_emulator/webhook_endpoints/{ep.id}/redeliver", {"event": "evt_nope"}
        )
    with pytest.raises(RuntimeError, match="404"):
        emu.control.call("GET", "/_emulator/webhook_endpoints/we_nope/deliveries")


def test_outage_then_recovery(
    emu: EmulatorHandle, client: stripe.StripeClient, receivers: Callable[..., Receiver]
) -> None:
    rx = receivers()
    emu.control.configure(webhook_max_attempts=100)  # keeps retrying until the outage ends
    ep = client.v1.webhook_endpoints.create(params={"url": rx.url, "enabled_events": ["*"]})
    emu.control.faults(webhook_outage=[ep.id])
    client.v1.customers.create(params={"email": "outage@example.com"})
    event = last_event(client, "customer.created")
    wait_for(lambda: len(deliveries(emu, ep.id)) >= 2, what="failed attempts")
    assert rx.received() == [] and not settled(client, event.id)
    assert {a["error"] for a in deliveries(emu, ep.id)} == {"outage"}

    emu.control.clear_faults()
    wait_for(lambda: settled(client, event.id), what="recovery")
    assert [e["id"] for e in rx.events()] == [event.id]
    assert deliveries(emu, ep.id)[-1]["outcome"] == "succeeded"


def test_duplicate_fault_sends_twice(
    emu: EmulatorHandle, client: stripe.StripeClient, receivers: Callable[..., Receiver]
) -> None:
    rx = receivers()
    ep = client.v1.webhook_endpoints.create(params={"url": rx.url, "enabled_events": ["*"]})
    emu.control.faults(webhook_duplicate_rate=1.0)
    client.v1.customers.create(params={"email": "dup@example.com"})
    event = last_event(client, "customer.created")
    wait_for(lambda: len(rx.received()) == 2, what="two copies")
    assert [e["id"] for e in rx.events()] == [event.id, event.id]
    for headers, body in rx.received():
        stripe.Webhook.construct_event(body, headers["Stripe-Signature"], ep.secret)
    wait_for(lambda: settled(client, event.id), what="settled")
    assert client.v1.events.retrieve(event.id).pending_webhooks == 0


def test_shuffle_fault_reorders_deliveries(
    emu: EmulatorHandle, client: stripe.StripeClient, receivers: Callable[..., Receiver]
) -> None:
    dispatcher = emu.app.services["webhooks"]
    emu.call(setattr, dispatcher, "per_endpoint", 1)  # one at a time: arrival order is send order
    try:
        rx = receivers()
        client.v1.webhook_endpoints.create(
            params={"url": rx.url, "enabled_events": ["customer.created"]}
        )

        def burst(tag: str) -> list[str]:
            with concurrent.futures.ThreadPoolExecutor(6) as pool:  # close together: one batch
                list(
                    pool.map(
                        lambda i: client.v1.customers.create(params={"email": f"{tag}{i}@x.com"}),
                        range(12),
                    )
                )
            events = client.v1.events.list(params={"limit": 100}).data
            return [e.id for e in reversed(events) if e.data.object.email.startswith(tag)]

        in_order = burst("a")
        wait_for(lambda: len(rx.received()) == 12, what="twelve deliveries")
        assert [e["id"] for e in rx.events()] == in_order  # FIFO without the fault

        emu.control.faults(webhook_shuffle=True)
        emitted = burst("b")
        wait_for(lambda: len(rx.received()) == 24, what="twelve more deliveries")
        got = [e["id"] for e in rx.events()[12:]]
        assert sorted(got) == sorted(emitted)
        assert got != emitted
    finally:
        emu.call(setattr, dispatcher, "per_endpoint", 16)


def test_delay_fault_holds_deliveries_back(
    emu: EmulatorHandle, client: stripe.StripeClient, receivers: Callable[..., Receiver]
) -> None:
    rx = receivers()
    ep = client.v1.webhook_endpoints.create(params={"url": rx.url, "enabled_events": ["*"]})
    emu.control.faults(webhook_delay_ms=1500)
    client.v1.customers.create(params={"email": "late@example.com"})
    assert rx.received() == [] and deliveries(emu, ep.id) == []
    wait_for(lambda: len(rx.received()) == 1, what="the held delivery")


def test_reset_drops_queued_deliveries(
    emu: EmulatorHandle, client: stripe.StripeClient, receivers: Callable[..., Receiver]
) -> None:
    rx = receivers()
    client.v1.webhook_endpoints.create(params={"url": rx.url, "enabled_events": ["*"]})
    emu.control.faults(webhook_delay_ms=500)
    client.v1.customers.create(params={"email": "gone@example.com"})
    emu.control.reset()
    time.sleep(1.0)
    assert rx.received() == []


def test_connect_endpoints_receive_connected_accounts_events(
    emu: EmulatorHandle, client: stripe.StripeClient, receivers: Callable[..., Receiver]
) -> None:
    acct = "acct_1ConnectedWebhooks0"
    em = emu.app.em
    platform = em.config.platform_account
    emu.call(
        lambda: em.store.insert(platform, account_object(acct, em.now(), "US", "usd", "express"))
    )
    own, connect, theirs = receivers(), receivers(), receivers()
    client.v1.webhook_endpoints.create(params={"url": own.url, "enabled_events": ["*"]})
    client.v1.webhook_endpoints.create(
        params={"url": connect.url, "enabled_events": ["*"], "connect": True}
    )
    client.v1.webhook_endpoints.create(
        params={"url": theirs.url, "enabled_events": ["customer.created"]},
        options={"stripe_account": acct},
    )
    client.v1.customers.create(params={"email": "c@example.com"}, options={"stripe_account": acct})
    client.v1.customers.create(params={"email": "p@example.com"})

    wait_for(lambda: connect.received() and theirs.received() and own.received(), what="all")
    assert [(e["account"], e["type"]) for e in connect.events()] == [(acct, "customer.created")]
    assert [e["account"] for e in theirs.events()] == [acct]
    assert [e["data"]["object"]["email"] for e in own.events()] == ["p@example.com"]
    assert "account" not in own.events()[0]


def test_one_slow_endpoint_gets_a_bounded_share(
    emu: EmulatorHandle, client: stripe.StripeClient, receivers: Callable[..., Receiver]
) -> None:
    dispatcher = emu.app.services["webhooks"]
    emu.call(setattr, dispatcher, "per_endpoint", 2)
    try:
        slow, fast = receivers(delays=[0.2] * 8), receivers()
        client.v1.webhook_endpoints.create(
            params={"url": slow.url, "enabled_events": ["customer.created"]}
        )
        client.v1.webhook_endpoints.create(
            params={"url": fast.url, "enabled_events": ["customer.updated"]}
        )
        made = [client.v1.customers.create(params={"email": f"b{i}@x.com"}) for i in range(8)]
        client.v1.customers.update(made[0].id, params={"name": "B"})
        wait_for(lambda: len(slow.received()) == 8, what="every slow delivery")
        assert slow.most_in_flight <= 2
        assert [e["type"] for e in fast.events()] == ["customer.updated"]
    finally:
        emu.call(setattr, dispatcher, "per_endpoint", 16)
