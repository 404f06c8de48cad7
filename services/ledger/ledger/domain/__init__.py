"""The ledger's pure rules: accounts, journal entries, posting rules. No I/O."""
