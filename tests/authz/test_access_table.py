"""Every method of every service against every caller role, over real gRPC (issue 8, defect
12): allowed roles get through (whatever the handler then says of the empty request), every
other role is PERMISSION_DENIED, an unknown token or none is UNAUTHENTICATED. Then the owner
checks: who acts on payments another caller created, and who sees a client_secret.

The expectations are tests/authz/expected.py; the services come from tests/e2e/services.py,
so a new service or method is checked (or fails for want of a row) without touching this."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from payplane.checkout.v1 import checkout_pb2
from payplane.common.v1 import common_pb2
from payplane.grpckit import idempotency_metadata, new_idempotency_key
from tests.e2e.harness import TOKENS, Platform
from tests.e2e.services import Method, methods

from .expected import ACROSS_CALLERS, EXPECTED, ROLES

ALL_METHODS = list(methods())
UNKNOWN_TOKEN = "not-a-token-anyone-was-given"
NO_TOKEN = None
# A caller's answer once it is through the gate: anything but these says nothing about access.
_GATE = (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)
_BROKEN = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)


def test_the_table_names_every_method_of_every_service() -> None:
    served = {(m.proto_service, m.name) for m in ALL_METHODS}
    expected = {(service, name) for service, names in EXPECTED.items() for name in names}
    assert served == expected, {"no row for": served - expected, "not served": expected - served}


async def _code(method: Method, platform: Platform, token: str | None, request: Any) -> Any:
    call = method.stub(platform, token)
    metadata = idempotency_metadata(new_idempotency_key()) if method.mutating else ()
    try:
        await call(request, metadata=metadata, timeout=20)
    except grpc.aio.AioRpcError as err:
        return err.code(), err.details() or ""
    return grpc.StatusCode.OK, ""


@pytest.mark.parametrize("method", ALL_METHODS, ids=str)
async def test_every_role_against_the_method(module_platform: Platform, method: Method) -> None:
    allowed = EXPECTED[method.proto_service][method.name]
    wrong: list[str] = []
    for role in ROLES:
        code, details = await _code(method, module_platform, _token(role), method.request_class())
        if role in allowed and (code in _GATE or code in _BROKEN):
            wrong.append(f"{role}: allowed, got {code.name} {details[:80]}")
        if role not in allowed and code != grpc.StatusCode.PERMISSION_DENIED:
            wrong.append(f"{role}: not allowed, got {code.name}")
    for token in (UNKNOWN_TOKEN, NO_TOKEN):
        code, _ = await _code(method, module_platform, token, method.request_class())
        if code != grpc.StatusCode.UNAUTHENTICATED:
            wrong.append(f"token {token!r}: got {code.name}")
    assert wrong == [], f"{method}: " + "; ".join(wrong)


def _token(role: str) -> str:
    return TOKENS[role]


def _checkout_method(name: str) -> Method:
    return next(m for m in ALL_METHODS if m.name == name and "checkout" in m.proto_service)


def _request_for(method: Method, payment_id: str) -> Any:
    cls = method.request_class
    if method.name == "RefundPayment":
        return cls(payment_id=payment_id, amount_minor=100)
    return cls(payment_id=payment_id)


async def _pay(platform: Platform, caller: str, pm: str = "pm_card_visa") -> checkout_pb2.Payment:
    payment: checkout_pb2.Payment = await platform.checkout(caller).CreatePayment(
        checkout_pb2.CreatePaymentRequest(
            amount=common_pb2.Money(amount_minor=5_000, currency="usd"),
            customer_ref=f"cust-{caller}",
            payment_method=pm,
        ),
        metadata=idempotency_metadata(new_idempotency_key()),
        timeout=30,
    )
    return payment


async def test_owner_checks_on_payments(module_platform: Platform) -> None:
    p = module_platform
    made = {"storefront": await _pay(p, "storefront"), "admin": await _pay(p, "admin")}
    wrong: list[str] = []
    for (service, name), across in ACROSS_CALLERS.items():
        method = _checkout_method(name)
        for role in sorted(EXPECTED[service][name]):
            # Someone else's payment: the admin's, or (for the admin) the storefront's.
            theirs = made["storefront" if role == "admin" else "admin"]
            if name == "ListPayments":
                listed = await p.checkout(role).ListPayments(
                    checkout_pb2.ListPaymentsRequest(page=common_pb2.PageRequest(page_size=100))
                )
                sees = theirs.id in [x.id for x in listed.payments]
                if sees != (role in across):
                    wrong.append(f"{role} lists another caller's payment: {sees}")
                continue
            code, details = await _code(method, p, _token(role), _request_for(method, theirs.id))
            hidden = code == grpc.StatusCode.NOT_FOUND
            if hidden == (role in across) or code in _GATE or code in _BROKEN:
                wrong.append(f"{name} by {role} on another caller's: {code.name} {details[:60]}")
            own = made.get(role)
            if own is not None:
                code, details = await _code(method, p, _token(role), _request_for(method, own.id))
                if code == grpc.StatusCode.NOT_FOUND or code in _GATE or code in _BROKEN:
                    wrong.append(f"{name} by {role} on its own: {code.name} {details[:60]}")
    assert wrong == []


async def test_client_secret_only_to_the_creator(module_platform: Platform) -> None:
    p = module_platform
    for creator in ("storefront", "admin"):
        made = await _pay(p, creator, pm="pm_card_threeDSecure2Required")
        assert made.next_action.client_secret, creator
        for role in sorted(EXPECTED["payplane.checkout.v1.CheckoutService"]["GetPayment"]):
            try:
                seen = await p.checkout(role).GetPayment(
                    checkout_pb2.GetPaymentRequest(payment_id=made.id), timeout=10
                )
            except grpc.aio.AioRpcError as err:
                assert err.code() == grpc.StatusCode.NOT_FOUND, (creator, role)
                continue
            assert seen.next_action.type, (creator, role)
            assert bool(seen.next_action.client_secret) == (role == creator), (creator, role)
