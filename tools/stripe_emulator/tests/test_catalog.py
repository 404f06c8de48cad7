from __future__ import annotations

import pytest
import stripe

from stripe_emulator.testing import assert_fixture_keys


def test_product_with_default_price_and_lifecycle(client: stripe.StripeClient) -> None:
    product = client.v1.products.create(
        params={
            "name": "Pro plan",
            "metadata": {"tier": "pro"},
            "default_price_data": {
                "currency": "usd",
                "unit_amount": 2000,
                "recurring": {"interval": "month"},
            },
        }
    )
    assert_fixture_keys(product, "product")
    assert product.id.startswith("prod_") and product.active
    price = client.v1.prices.retrieve(product.default_price)
    assert_fixture_keys(price, "price")
    assert (price.type, price.unit_amount, str(price.unit_amount_decimal)) == (
        "recurring",
        2000,
        "2000",
    )
    assert price.recurring.interval == "month" and price.recurring.interval_count == 1
    assert price.recurring.usage_type == "licensed" and price.recurring.meter is None

    updated = client.v1.products.update(product.id, params={"active": False, "name": "Pro"})
    assert (updated.active, updated.name) == (False, "Pro")
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.products.delete(product.id)
    assert "has one or more user-created prices" in str(err.value.user_message)

    bare = client.v1.products.create(params={"name": "Bare", "id": "prod_custom"})
    assert bare.id == "prod_custom"
    deleted = client.v1.products.delete("prod_custom")
    assert_fixture_keys(deleted, "deleted_product")
    active = client.v1.products.list(params={"active": False}).data
    assert [p.id for p in active] == [product.id]


def test_prices_one_time_recurring_tiered(client: stripe.StripeClient) -> None:
    product = client.v1.products.create(params={"name": "Seats"})
    one_time = client.v1.prices.create(
        params={"currency": "eur", "unit_amount_decimal": "1250.5", "product": product.id}
    )
    assert (one_time.type, one_time.unit_amount, str(one_time.unit_amount_decimal)) == (
        "one_time",
        None,
        "1250.5",
    )
    weekly = client.v1.prices.create(
        params={
            "currency": "usd",
            "unit_amount": 500,
            "product": product.id,
            "recurring": {"interval": "week", "interval_count": 2},
            "transform_quantity": {"divide_by": 10, "round": "up"},
        }
    )
    assert weekly.recurring.interval_count == 2 and weekly.transform_quantity.divide_by == 10
    tiered = client.v1.prices.create(
        params={
            "currency": "usd",
            "product": product.id,
            "billing_scheme": "tiered",
            "tiers_mode": "graduated",
            "tiers": [
                {"up_to": 5, "unit_amount": 1000},
                {"up_to": "inf", "unit_amount": 800, "flat_amount": 100},
            ],
            "recurring": {"interval": "year"},
        }
    )
    assert tiered.tiers_mode == "graduated"
    assert "tiers" not in tiered.to_dict()  # only when expanded, as Stripe does
    expanded = client.v1.prices.retrieve(tiered.id, params={"expand": ["tiers"]})
    assert [t.up_to for t in expanded.tiers] == [5, None]
    assert expanded.tiers[1].flat_amount == 100

    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.prices.create(
            params={
                "currency": "usd",
                "unit_amount": 100,
                "product": product.id,
                "recurring": {"interval": "month", "interval_count": 37},
            }
        )
    assert err.value.param == "recurring[interval_count]"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.prices.create(
            params={
                "currency": "usd",
                "product": product.id,
                "billing_scheme": "tiered",
                "tiers_mode": "volume",
                "tiers": [{"up_to": 5, "unit_amount": 1}],
                "recurring": {"interval": "month"},
            }
        )
    assert err.value.param == "tiers"

    recurring = client.v1.prices.list(params={"type": "recurring", "product": product.id}).data
    assert {p.id for p in recurring} == {weekly.id, tiered.id}
    weekly_only = client.v1.prices.list(params={"recurring": {"interval": "week"}}).data
    assert [p.id for p in weekly_only] == [weekly.id]


def test_metered_price_needs_a_meter(client: stripe.StripeClient) -> None:
    product = client.v1.products.create(params={"name": "API calls"})
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.prices.create(
            params={
                "currency": "usd",
                "unit_amount": 1,
                "product": product.id,
                "recurring": {"interval": "month", "usage_type": "metered"},
            }
        )
    assert err.value.param == "recurring[meter]"
    with pytest.raises(stripe.InvalidRequestError) as err:  # removed with Basil
        client.v1.prices.create(
            params={
                "currency": "usd",
                "unit_amount": 1,
                "product": product.id,
                "recurring": {
                    "interval": "month",
                    "usage_type": "metered",
                    "aggregate_usage": "sum",
                },
            }
        )
    assert err.value.param == "recurring[aggregate_usage]"
    meter = client.v1.billing.meters.create(
        params={
            "display_name": "API calls",
            "event_name": "api_call",
            "default_aggregation": {"formula": "sum"},
        }
    )
    price = client.v1.prices.create(
        params={
            "currency": "usd",
            "unit_amount": 3,
            "product": product.id,
            "recurring": {"interval": "month", "usage_type": "metered", "meter": meter.id},
        }
    )
    assert price.recurring.meter == meter.id and price.recurring.usage_type == "metered"


def test_lookup_keys_are_unique_unless_transferred(client: stripe.StripeClient) -> None:
    product = client.v1.products.create(params={"name": "Basic"})
    base = {"currency": "usd", "product": product.id, "recurring": {"interval": "month"}}
    first = client.v1.prices.create(params={**base, "unit_amount": 900, "lookup_key": "basic"})
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.prices.create(params={**base, "unit_amount": 1000, "lookup_key": "basic"})
    assert first.id in str(err.value.user_message) and err.value.param == "lookup_key"
    second = client.v1.prices.create(
        params={**base, "unit_amount": 1000, "lookup_key": "basic", "transfer_lookup_key": True}
    )
    assert client.v1.prices.retrieve(first.id).lookup_key is None
    found = client.v1.prices.list(params={"lookup_keys": ["basic"]}).data
    assert [p.id for p in found] == [second.id]
    off = client.v1.prices.update(second.id, params={"active": False, "nickname": "old"})
    assert (off.active, off.nickname) == (False, "old")
    assert [p.id for p in client.v1.prices.list(params={"active": False}).data] == [second.id]


def test_plans_are_the_legacy_view_of_recurring_prices(client: stripe.StripeClient) -> None:
    plan = client.v1.plans.create(
        params={
            "id": "gold-monthly",
            "amount": 1500,
            "currency": "usd",
            "interval": "month",
            "product": {"name": "Gold"},
        }
    )
    assert_fixture_keys(plan, "plan")
    assert (plan.id, plan.amount, plan.interval, plan.object) == (
        "gold-monthly",
        1500,
        "month",
        "plan",
    )
    assert client.v1.prices.retrieve("gold-monthly").unit_amount == 1500
    product = client.v1.products.create(params={"name": "One-off"})
    one_time = client.v1.prices.create(
        params={"currency": "usd", "unit_amount": 100, "product": product.id}
    )
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.plans.retrieve(one_time.id)
    assert err.value.http_status == 404
    assert [p.id for p in client.v1.plans.list().data] == ["gold-monthly"]
    assert client.v1.plans.update("gold-monthly", params={"nickname": "g"}).nickname == "g"
    assert_fixture_keys(client.v1.plans.delete("gold-monthly"), "deleted_plan")
