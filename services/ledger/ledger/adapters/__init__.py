"""ledger's adapters: tables and the journal repository."""
