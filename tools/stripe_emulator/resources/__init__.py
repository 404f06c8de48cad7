"""Stripe resources. Importing this package registers every route.

Ownership: customers and accounts (platform) are core; payment_methods, payment_intents,
charges, refunds, disputes and radar are the payments group; balance, payouts, connect,
transfers and application_fees are money movement; events and webhook_endpoints are events.
"""

from . import (  # noqa: F401
    accounts,
    application_fees,
    balance,
    charges,
    connect,
    customers,
    disputes,
    events,
    payment_intents,
    payment_methods,
    payouts,
    radar,
    refunds,
    transfers,
    webhook_endpoints,
)
