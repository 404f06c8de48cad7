"""checkout's use cases: load, decide, commit (one transaction per step)."""
