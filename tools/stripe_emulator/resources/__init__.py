"""Stripe resources. Importing this package registers every route.

Ownership: customers and accounts (platform) are core; payment_methods, payment_intents,
charges, refunds, disputes and radar are the payments group; balance, payouts, connect,
external_accounts, capabilities, onboarding, verification, persons, account_links, transfers
and application_fees are money movement; events and webhook_endpoints are events.
Billing (engine in `stripe_emulator.billing`): products, prices (and plans), coupons (and
promotion codes), tax_rates, setup_intents, tokens (and customer card sources),
customer_billing (balance transactions, tax ids), invoices (with invoice items and invoice
payments), subscriptions (with subscription items), clocks (test clocks) and meters.
"""

from . import (  # noqa: F401
    account_links,
    accounts,
    application_fees,
    balance,
    capabilities,
    charges,
    clocks,
    connect,
    coupons,
    customer_billing,
    customers,
    disputes,
    events,
    external_accounts,
    invoice_items,
    invoices,
    meters,
    onboarding,
    payment_intents,
    payment_methods,
    payouts,
    persons,
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
    verification,
    webhook_endpoints,
)
