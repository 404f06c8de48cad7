"""Stripe resources. Importing this package registers every route.

Ownership: customers and accounts (platform) are core; payment_methods, payment_intents,
charges, refunds, disputes and radar are the payments group; balance, payouts, connect,
external_accounts, capabilities, onboarding, verification, persons, account_links, transfers
and application_fees are money movement; events and webhook_endpoints are events.
"""

from . import (  # noqa: F401
    account_links,
    accounts,
    application_fees,
    balance,
    capabilities,
    charges,
    connect,
    customers,
    disputes,
    events,
    external_accounts,
    onboarding,
    payment_intents,
    payment_methods,
    payouts,
    persons,
    radar,
    refunds,
    transfers,
    verification,
    webhook_endpoints,
)
