"""Stripe resources. Importing this package registers every route.

Ownership: customers and accounts (platform) are core; payment_methods, payment_intents,
charges, refunds, disputes and radar are the payments group; balance, payouts, connect,
transfers and application_fees are money movement; events and webhook_endpoints are events.
Billing (engine in `stripe_emulator.billing`): products, prices (and plans), coupons (and
promotion codes), tax_rates, setup_intents, tokens (and customer card sources),
customer_billing (balance transactions, tax ids), invoices (with invoice items and invoice
payments), subscriptions (with subscription items), clocks (test clocks) and meters.
"""

from . import (  # noqa: F401
    accounts,
    application_fees,
    balance,
    charges,
    clocks,
    connect,
    coupons,
    customer_billing,
    customers,
    disputes,
    events,
    invoice_items,
    invoices,
    meters,
    payment_intents,
    payment_methods,
    payouts,
    prices,
    products,
    radar,
    refunds,
    setup_intents,
    subscription_items,
    subscription_updates,
    subscriptions,
    tax_rates,
    tokens,
    transfers,
    webhook_endpoints,
)
