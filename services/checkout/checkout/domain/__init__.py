"""checkout's pure rules: the payment state machine, declines, refunds. No I/O."""
