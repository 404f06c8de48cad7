from __future__ import annotations

import pytest
import stripe

from stripe_emulator.testing import EmulatorHandle, assert_fixture_keys


def test_customer_crud_and_list(client: stripe.StripeClient) -> None:
    created = client.v1.customers.create(
        params={"email": "ada@example.com", "metadata": {"tier": "gold"}}
    )
    assert created.id.startswith("cus_")
    assert created.object == "customer" and created.livemode is False
    assert created.metadata["tier"] == "gold"

    fetched = client.v1.customers.retrieve(created.id)
    assert fetched.email == "ada@example.com"

    updated = client.v1.customers.update(
        created.id, params={"name": "Ada", "metadata": {"tier": ""}}
    )
    assert updated.name == "Ada" and "tier" not in updated.metadata

    others = [client.v1.customers.create(params={"email": f"c{i}@example.com"}) for i in range(4)]
    page = client.v1.customers.list(params={"limit": 2})
    assert [c.id for c in page.data] == [others[3].id, others[2].id] and page.has_more
    page2 = client.v1.customers.list(params={"limit": 2, "starting_after": page.data[-1].id})
    assert [c.id for c in page2.data] == [others[1].id, others[0].id] and page2.has_more
    back = client.v1.customers.list(params={"limit": 2, "ending_before": page2.data[0].id})
    assert [c.id for c in back.data] == [others[3].id, others[2].id]
    by_email = client.v1.customers.list(params={"email": "c1@example.com"})
    assert [c.id for c in by_email.data] == [others[1].id]

    deleted = client.v1.customers.delete(created.id)
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.retrieve(created.id)
    assert err.value.http_status == 404 and err.value.code == "resource_missing"


def test_unknown_parameter_names_param(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.create(params={"emali": "typo@example.com"})
    assert err.value.http_status == 400
    assert err.value.param == "emali"


def test_request_log_counts_calls(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    client.v1.customers.create(
        params={"email": "x@example.com"}, options={"idempotency_key": "k-1"}
    )
    client.v1.customers.create(
        params={"email": "x@example.com"}, options={"idempotency_key": "k-1"}
    )
    entries = emu.control.requests(idempotency_key="k-1")
    assert [e["replayed"] for e in entries] == [False, True]
    assert len(client.v1.customers.list().data) == 1


def test_customer_carries_stripe_keys(client: stripe.StripeClient) -> None:
    assert_fixture_keys(client.v1.customers.create(params={"email": "k@example.com"}), "customer")
