"""checkout's adapters: tables and repositories, the Stripe calls."""
