"""checkout's edges: the gRPC servicer, the webhook ingress and the event consumers."""
