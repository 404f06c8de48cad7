"""Every RPC of every listed service, driven over real gRPC with generated requests against
the in-process platform (issue 8, the fuzz suite).

For each request, from a caller the method admits: no INTERNAL or UNKNOWN (nor a transport
failure dressed as RESOURCE_EXHAUSTED), status details of bounded length whatever was sent,
and no half-made object: a refused mutation stores no payment and has Stripe change nothing
(no charge, refund, capture or cancel), no payment is ever PENDING without a PaymentIntent,
and an accepted reconciliation run can be read back. Services come from
tests/e2e/services.py, allowed callers from tests/authz."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
import pytest
import pytest_asyncio
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from checkout.adapters.tables import payments
from ledger.domain.accounts import ACCOUNTS
from payplane.checkout.v1 import checkout_pb2, review_pb2
from payplane.common.v1 import common_pb2
from payplane.grpckit import errors, idempotency_metadata, new_idempotency_key
from payplane.ledger.v1 import ledger_pb2
from tests.authz.expected import EXPECTED
from tests.e2e.harness import TOKENS, Platform, eventually
from tests.e2e.services import Method, methods

from .settings import FUZZ
from .strategies import Hints, message_strategy

ALL_METHODS = list(methods())
# What no request may ever produce: a bug (INTERNAL, UNKNOWN, DATA_LOSS), a reply too big
# for gRPC's metadata (RESOURCE_EXHAUSTED: an echoed input), a gate the table says is open,
# a hang, or a dependency falling over (the emulator and NATS are healthy throughout).
FORBIDDEN = frozenset(
    {
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DATA_LOSS,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)


@dataclass
class World:
    platform: Platform
    hints: Hints


async def _money_request(p: Platform, caller: str, **fields: Any) -> checkout_pb2.Payment:
    request = checkout_pb2.CreatePaymentRequest(
        amount=common_pb2.Money(amount_minor=fields.pop("amount", 5_000), currency="usd"),
        customer_ref=fields.pop("customer_ref", "cust-fuzz"),
        payment_method=fields.pop("pm", "pm_card_visa"),
        **fields,
    )
    made: checkout_pb2.Payment = await p.checkout(caller).CreatePayment(
        request, metadata=idempotency_metadata(new_idempotency_key()), timeout=30
    )
    return made


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(module_platform: Platform) -> World:
    """Real objects in every state, so generated ids often name something."""
    p = module_platform
    made = [
        await _money_request(p, "storefront"),
        await _money_request(p, "admin", capture_method=checkout_pb2.CAPTURE_METHOD_MANUAL),
        await _money_request(p, "storefront", confirm_later=True),
        await _money_request(p, "storefront", pm="pm_card_threeDSecure2Required"),
        await _money_request(p, "storefront", pm="pm_card_riskLevelElevated"),
    ]
    ids = [m.id for m in made] + [m.review_id for m in made if m.review_id]
    ledger = p.ledger("finance")
    entries = await eventually(
        lambda: ledger.ListEntries(ledger_pb2.ListEntriesRequest(), timeout=10),
        lambda reply: len(reply.entries) >= 2,
    )
    ids += [e.id for e in entries.entries]
    run = await ledger.RunReconciliation(
        ledger_pb2.RunReconciliationRequest(skip_import=True),
        metadata=idempotency_metadata(new_idempotency_key()),
        timeout=10,
    )
    ids.append(run.run_id)
    strings = {
        "reason": ["duplicate", "fraudulent", "requested_by_customer", "abandoned", "ok"],
        "resolution": ["accept", "dismiss", "heal"],
        "account": sorted(ACCOUNTS),
        "customer_ref": ["cust-fuzz", "c" * 256],
        "return_url": ["https://shop.example/back", "javascript:alert(1)"],
        "kind": ["missing_in_ledger", "fee_mismatch"],
        "status": ["open", "healed"],
        "ip_address": ["10.0.0.1", "::1", "999.1.1.1"],
        "ip_country": ["US", "fr", "USA"],
    }
    ok, held, draft = made[0], made[1], made[2]
    review_id = next(m.review_id for m in made if m.review_id)
    page = common_pb2.PageRequest(page_size=1)
    templates = [
        common_pb2.Money(amount_minor=1_000, currency="usd"),
        checkout_pb2.CreatePaymentRequest(
            amount=common_pb2.Money(amount_minor=1_000, currency="usd"),
            customer_ref="cust-fuzz",
            payment_method="pm_card_visa",
        ),
        checkout_pb2.GetPaymentRequest(payment_id=ok.id),
        checkout_pb2.ListPaymentsRequest(customer_ref="cust-fuzz", page=page),
        checkout_pb2.RefundPaymentRequest(payment_id=ok.id, amount_minor=100),
        checkout_pb2.CapturePaymentRequest(payment_id=held.id, amount_minor=1_000),
        checkout_pb2.CancelPaymentRequest(payment_id=held.id, reason="abandoned"),
        checkout_pb2.ConfirmPaymentRequest(payment_id=draft.id),
        review_pb2.ListReviewsRequest(status=review_pb2.REVIEW_STATUS_OPEN, page=page),
        review_pb2.GetReviewRequest(review_id=review_id),
        review_pb2.DecideReviewRequest(review_id=review_id, reason="checked by phone"),
        ledger_pb2.GetBalanceRequest(account="revenue", currency="usd", as_of_seq=1),
        ledger_pb2.ListEntriesRequest(account="revenue", page=page),
        ledger_pb2.GetEntryRequest(entry_id=entries.entries[0].id),
        ledger_pb2.GetAccountStatementRequest(account="revenue", currency="usd", page=page),
        ledger_pb2.RunReconciliationRequest(skip_import=True),
        ledger_pb2.GetReconciliationRunRequest(run_id=run.run_id),
        ledger_pb2.ListDiscrepanciesRequest(page=page),
        ledger_pb2.ResolveDiscrepancyRequest(resolution="accept", reason="fine"),
    ]
    return World(p, Hints(ids, strings, templates))


async def _counts(p: Platform) -> tuple[int, int]:
    """(payments stored, changes Stripe made: POSTs it executed, replays excluded)."""
    async with p.checkout_app.engine.connect() as conn:
        stored = (await conn.execute(select(func.count()).select_from(payments))).scalar_one()
    executed = [
        r
        for r in p.emulator.control.requests(method="POST")
        if 200 <= r["status"] < 300 and not r["replayed"] and r["path"].startswith("/v1/")
    ]
    return int(stored), len(executed)


async def _half_made(p: Platform) -> list[str]:
    """Payments PENDING with no PaymentIntent: nothing could ever confirm or cancel them."""
    async with p.checkout_app.engine.connect() as conn:
        rows = await conn.execute(
            select(payments.c.id).where(
                payments.c.status == "pending", payments.c.stripe_payment_intent_id.is_(None)
            )
        )
        return [str(r.id) for r in rows]


@pytest.mark.parametrize("method", ALL_METHODS, ids=str)
@FUZZ
@given(data=st.data())
async def test_no_request_breaks_an_rpc(world: World, method: Method, data: st.DataObject) -> None:
    p = world.platform
    allowed = sorted(EXPECTED[method.proto_service][method.name])
    caller = data.draw(st.sampled_from(allowed), label="caller")
    request = data.draw(message_strategy(method.descriptor.input_type, world.hints), label="req")
    key = data.draw(st.sampled_from(["fuzz-reused-key", new_idempotency_key()]), label="key")
    creating = method.name == "CreatePayment"
    before = await _counts(p) if method.mutating else None
    call = method.stub(p, TOKENS[caller])
    reply: Any = None
    code, details = grpc.StatusCode.OK, ""
    try:
        reply = await call(
            request,
            metadata=idempotency_metadata(key) if method.mutating else (),
            timeout=30,
        )
    except grpc.aio.AioRpcError as err:
        code, details = err.code(), err.details() or ""
    assert code not in FORBIDDEN, f"{method} as {caller}: {code.name} {details[:300]}"
    assert len(details) <= errors.MAX_DETAILS, f"{method}: {len(details)} characters of details"
    if method.mutating and code != grpc.StatusCode.OK:
        assert await _counts(p) == before, f"a refused {method} stored or changed something"
    if creating and code == grpc.StatusCode.OK:
        assert reply.stripe_payment_intent_id or reply.status == checkout_pb2.PAYMENT_STATUS_FAILED
    assert await _half_made(p) == []
    if method.name == "RunReconciliation" and code == grpc.StatusCode.OK:
        await p.ledger(caller).GetReconciliationRun(
            ledger_pb2.GetReconciliationRunRequest(run_id=reply.run_id), timeout=10
        )  # raises on INTERNAL: an accepted run must stay readable


async def test_the_platform_still_works_after_the_fuzz(world: World) -> None:
    """Last in the module: the same platform, after every generated request, still takes a
    payment, books it and lists reviews."""
    p = world.platform
    paid = await _money_request(p, "storefront", amount=4_321, customer_ref="cust-after-fuzz")
    assert paid.status == checkout_pb2.PAYMENT_STATUS_SUCCEEDED
    ledger = p.ledger("finance")
    await eventually(
        lambda: ledger.ListEntries(ledger_pb2.ListEntriesRequest(source_id=paid.id), timeout=10),
        lambda reply: len(reply.entries) == 1,
    )
    await p.reviews().ListReviews(review_pb2.ListReviewsRequest(), timeout=10)
    assert all(not task.done() for task in p.checkout_app.tasks + p.ledger_app.tasks)
