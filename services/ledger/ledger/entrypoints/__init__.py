"""ledger's edges: the gRPC servicer and the event consumers."""
