"""checkout: one-off payments (PaymentIntents), refunds, disputes, fraud decisions."""
