"""ledger's use cases: post entries from events, answer balance and entry queries."""
