from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

__all__ = ["OPEN_METHOD_PREFIXES", "CallerAuth", "is_open_method"]

# Probes and tooling must work without a token: health checks (kubelet, load balancers) and
# reflection (grpcurl) reveal nothing a caller could abuse.
OPEN_METHOD_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)


def is_open_method(method: str) -> bool:
    return method.startswith(OPEN_METHOD_PREFIXES)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class CallerAuth:
    """Bearer tokens to caller names, and which callers may call which methods.

    `permissions` maps a full method name ("/payplane.checkout.v1.CheckoutService/CreatePayment")
    or a whole service ("/payplane.checkout.v1.CheckoutService/*") to the callers allowed.
    A method named nowhere is denied to everyone.
    """

    def __init__(self, tokens: Mapping[str, str], permissions: Mapping[str, Iterable[str]]) -> None:
        if any(not token for token in tokens):
            raise ValueError("empty bearer tokens are not allowed")
        # Looked up by digest: comparing fixed-size hashes leaks nothing about the token.
        self._callers = {_digest(token): caller for token, caller in tokens.items()}
        self._permissions = {method: frozenset(c) for method, c in permissions.items()}

    def authenticate(self, authorization: str | None) -> str | None:
        """The caller named by an `authorization: Bearer <token>` value, or None."""
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self._callers.get(_digest(token.strip()))

    def allows(self, caller: str, method: str) -> bool:
        allowed = self._permissions.get(method)
        if allowed is None:
            service, _, _ = method.rpartition("/")
            allowed = self._permissions.get(f"{service}/*", frozenset())
        return caller in allowed
