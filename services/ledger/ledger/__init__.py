"""ledger: double-entry books fed by events, reconciled against Stripe."""
