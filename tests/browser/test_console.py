"""The console in a real headless chromium against the real stack (processes): a reviewer
approves a held payment and sees it captured; a finance user resolves a discrepancy; a
support user is refused, by the service, what is not theirs; a form without its CSRF token
is refused."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import BrowserContext, Page, expect

from payplane.checkout.v1 import checkout_pb2, checkout_pb2_grpc, review_pb2, review_pb2_grpc
from payplane.common.v1 import common_pb2
from payplane.grpckit import channel, idempotency_metadata, new_idempotency_key
from payplane.ledger.v1 import ledger_pb2, ledger_pb2_grpc
from stack.config import DEV_CALLERS, DEV_USERS
from stripe_emulator.testing import EmulatorControl

# The default fraud model holds usd payments from 10,000.00 for a human (limit large_usd).
HELD_AMOUNT = 1_000_000


class Grpc:
    """The stack's services as an internal caller reaches them."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        self.channels: list[Any] = []

    def _ch(self, service: str, caller: str) -> Any:
        ch = channel(self.state["services"][service]["grpc"], DEV_CALLERS[caller], tracing=False)
        self.channels.append(ch)
        return ch

    def checkout(self, caller: str = "storefront") -> Any:
        return checkout_pb2_grpc.CheckoutServiceStub(self._ch("checkout", caller))

    def reviews(self, caller: str = "admin") -> Any:
        return review_pb2_grpc.ReviewServiceStub(self._ch("checkout", caller))

    def ledger(self, caller: str = "finance") -> Any:
        return ledger_pb2_grpc.LedgerServiceStub(self._ch("ledger", caller))

    async def pay(self, amount: int, customer: str) -> checkout_pb2.Payment:
        payment: checkout_pb2.Payment = await self.checkout().CreatePayment(
            checkout_pb2.CreatePaymentRequest(
                amount=common_pb2.Money(amount_minor=amount, currency="usd"),
                customer_ref=customer,
                payment_method="pm_card_visa",
            ),
            metadata=idempotency_metadata(new_idempotency_key()),
            timeout=30,
        )
        return payment

    async def close(self) -> None:
        for ch in self.channels:
            await ch.close(grace=None)


@pytest.fixture
async def grpc_(stack: dict[str, Any]) -> AsyncIterator[Grpc]:
    g = Grpc(stack)
    try:
        yield g
    finally:
        await g.close()


def console_url(stack: dict[str, Any]) -> str:
    return str(stack["console"]["url"])


async def sign_in(page: Page, stack: dict[str, Any], name: str, path: str = "/") -> None:
    """Open `path`, get sent to the sign-in form, sign in, land back on `path`."""
    await page.goto(console_url(stack) + path)
    await expect(page).to_have_url(re.compile(r"/login"))
    await page.fill("input[name=name]", name)
    await page.fill("input[name=password]", DEV_USERS[name][1])
    await page.click("button[type=submit]")
    await expect(page.get_by_test_id("whoami")).to_have_text(f"{name} ({DEV_USERS[name][0]})")


async def held_payment(grpc_: Grpc, customer: str) -> checkout_pb2.Payment:
    payment = await grpc_.pay(HELD_AMOUNT, customer)
    assert payment.status == checkout_pb2.PAYMENT_STATUS_REQUIRES_CAPTURE, payment
    assert payment.fraud.decision == checkout_pb2.FRAUD_DECISION_REVIEW and payment.review_id
    return payment


async def test_a_reviewer_approves_a_held_payment_and_sees_it_captured(
    stack: dict[str, Any], grpc_: Grpc, browser: BrowserContext
) -> None:
    payment = await held_payment(grpc_, "cust-browser-held")
    page = await browser.new_page()
    await sign_in(page, stack, "alice", "/reviews")

    await page.get_by_role("link", name=payment.review_id).click()
    await expect(page.get_by_test_id("review-status")).to_have_text("open")
    await expect(page.get_by_test_id("payment-status")).to_have_text("requires capture")
    await expect(page.get_by_test_id("fraud-summary")).to_contain_text("limit:large_usd")
    assert await page.locator("svg.chart rect").count() > 0  # the contributions chart

    await page.get_by_test_id("approve-reason").fill("known customer, confirmed by phone")
    await page.get_by_test_id("approve").click()
    await expect(page.get_by_test_id("flash")).to_have_text("Review approved.")
    await expect(page.get_by_test_id("review-status")).to_have_text("approved")
    await expect(page.get_by_test_id("payment-status")).to_have_text("succeeded")
    await expect(page.get_by_test_id("payment-captured")).to_have_text("10,000.00 USD")
    await expect(page.get_by_test_id("audit").locator("tr").last).to_contain_text("reviewer:alice")
    # The service's own record agrees: captured, decided by the reviewer credential for alice.
    after = await grpc_.checkout().GetPayment(
        checkout_pb2.GetPaymentRequest(payment_id=payment.id), timeout=10
    )
    assert after.status == checkout_pb2.PAYMENT_STATUS_SUCCEEDED
    assert after.amount_captured.amount_minor == HELD_AMOUNT
    review = await grpc_.reviews().GetReview(
        review_pb2.GetReviewRequest(review_id=payment.review_id), timeout=10
    )
    assert review.review.decided_by == "reviewer:alice"

    # The payment's timeline: its decisions, the review, the events it published with their
    # trace ids (the ledger's books are not the reviewer's to read: the ledger says so).
    await page.get_by_role("link", name=payment.id).click()
    timeline = page.get_by_test_id("timeline")
    await expect(timeline).to_contain_text("fraud decision (live, pre auth)")
    await expect(timeline).to_contain_text("review approved")
    await expect(timeline).to_contain_text("published checkout.payment.succeeded")
    assert re.fullmatch(r"[0-9a-f]{32}", await page.get_by_test_id("trace-id").first.inner_text())
    await expect(page.get_by_test_id("ledger-refused")).to_contain_text("PERMISSION_DENIED")
    assert "secret" not in (await page.content()).lower()


async def wait_booked(grpc_: Grpc, payment_id: str, timeout_s: float = 30.0) -> None:
    ledger = grpc_.ledger("admin")
    deadline = time.monotonic() + timeout_s
    while True:
        reply = await ledger.ListEntries(
            ledger_pb2.ListEntriesRequest(source_id=payment_id), timeout=10
        )
        if reply.entries:
            return
        assert time.monotonic() < deadline, f"the ledger never booked {payment_id}"
        await asyncio.sleep(0.2)


async def reconcile(grpc_: Grpc, timeout_s: float = 60.0) -> None:
    ledger = grpc_.ledger("finance")
    started = await ledger.RunReconciliation(
        ledger_pb2.RunReconciliationRequest(),
        metadata=idempotency_metadata(new_idempotency_key()),
        timeout=10,
    )
    deadline = time.monotonic() + timeout_s
    while True:
        run = await ledger.GetReconciliationRun(
            ledger_pb2.GetReconciliationRunRequest(run_id=started.run_id), timeout=10
        )
        if run.status != "running":
            assert run.status == "completed", run.error
            return
        assert time.monotonic() < deadline, f"run {started.run_id} still running"
        await asyncio.sleep(0.2)


async def overpriced_fee_discrepancy(stack: dict[str, Any], grpc_: Grpc) -> ledger_pb2.Discrepancy:
    """Stripe's pricing changes behind the ledger's back (as tests/e2e/test_ledger_injected.py
    does): reconciliation queues the fee for a human (fee_mismatch against the pricing model)."""
    control = EmulatorControl(stack["stripe"]["url"])
    control.configure(pricing={"percent_bp": 320})
    try:
        paid = await grpc_.pay(6_000, "cust-browser-overpriced")
    finally:
        control.configure(pricing={"percent_bp": 290})
    assert paid.status == checkout_pb2.PAYMENT_STATUS_SUCCEEDED
    await wait_booked(grpc_, paid.id)
    await reconcile(grpc_)
    found = await grpc_.ledger().ListDiscrepancies(
        ledger_pb2.ListDiscrepanciesRequest(kind="fee_mismatch", status="open"), timeout=10
    )
    [d] = [d for d in found.discrepancies if d.evidence.get("against") == "pricing_model"]
    result: ledger_pb2.Discrepancy = d
    return result


async def test_a_finance_user_resolves_a_discrepancy(
    stack: dict[str, Any], grpc_: Grpc, browser: BrowserContext
) -> None:
    d = await overpriced_fee_discrepancy(stack, grpc_)
    page = await browser.new_page()
    await sign_in(page, stack, "fiona", "/discrepancies")
    assert await page.locator("svg.chart rect").count() > 0  # found per day, by kind
    await page.get_by_role("link", name=d.id).click()
    await expect(page.get_by_test_id("discrepancy-status")).to_have_text("open")
    await expect(page.get_by_test_id("evidence")).to_contain_text("expected_fee")

    await page.get_by_test_id("resolution").select_option("accept")
    await page.get_by_test_id("resolve-reason").fill("Stripe's new rate card, accepted")
    await page.get_by_test_id("resolve").click()
    await expect(page.get_by_test_id("flash")).to_have_text("Discrepancy resolved.")
    await expect(page.get_by_test_id("discrepancy-status")).to_have_text("resolved")
    await expect(page.get_by_test_id("audit").locator("tr").last).to_contain_text("finance:fiona")
    detail = await grpc_.ledger().GetDiscrepancy(
        ledger_pb2.GetDiscrepancyRequest(discrepancy_id=d.id), timeout=10
    )
    assert detail.discrepancy.status == "resolved"
    assert detail.discrepancy.resolved_by == "finance:fiona"


async def hidden_csrf_token(page: Page) -> str:
    token = await page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token
    return token


async def test_a_support_user_is_refused_what_is_not_theirs_by_the_service(
    stack: dict[str, Any], grpc_: Grpc, browser: BrowserContext
) -> None:
    payment = await held_payment(grpc_, "cust-browser-support")
    page = await browser.new_page()
    await sign_in(page, stack, "sam", f"/reviews/{payment.review_id}")
    # Support reads reviews but is not offered the decision ...
    await expect(page.get_by_test_id("review-status")).to_have_text("open")
    assert await page.get_by_test_id("approve").count() == 0
    await expect(page.get_by_text("Only reviewers decide reviews.")).to_be_visible()

    # ... and a forged approval, with support's own valid session and CSRF token, is not
    # decided by the console: checkout refuses it, in its own words.
    url = console_url(stack)
    forged = await page.request.post(
        f"{url}/reviews/{payment.review_id}/approve",
        form={"csrf_token": await hidden_csrf_token(page), "reason": "let me through"},
    )
    assert forged.status == 403
    text = await forged.text()
    assert "PERMISSION_DENIED" in text
    assert "may not call /payplane.checkout.v1.ReviewService/ApproveReview" in text
    review = await grpc_.reviews().GetReview(
        review_pb2.GetReviewRequest(review_id=payment.review_id), timeout=10
    )
    assert review.review.status == review_pb2.REVIEW_STATUS_OPEN
    assert review.payment.status == checkout_pb2.PAYMENT_STATUS_REQUIRES_CAPTURE

    # The same for the ledger: resolving a discrepancy is finance's and admin's.
    forged = await page.request.post(
        f"{url}/discrepancies/dsc_any/resolve",
        form={"csrf_token": await hidden_csrf_token(page), "resolution": "accept",
              "reason": "let me through"},
    )  # fmt: skip
    assert forged.status == 403
    assert "may not call /payplane.ledger.v1.LedgerService/ResolveDiscrepancy" in (
        await forged.text()
    )


async def test_a_form_without_its_csrf_token_is_refused(
    stack: dict[str, Any], grpc_: Grpc, browser: BrowserContext
) -> None:
    payment = await held_payment(grpc_, "cust-browser-csrf")
    page = await browser.new_page()
    await sign_in(page, stack, "alice", f"/reviews/{payment.review_id}")
    url = f"{console_url(stack)}/reviews/{payment.review_id}/approve"
    for form in ({"reason": "no token"}, {"reason": "bad token", "csrf_token": "forged"}):
        reply = await page.request.post(url, form=form)
        assert reply.status == 403
        assert "did not come from this console" in await reply.text()
    review = await grpc_.reviews().GetReview(
        review_pb2.GetReviewRequest(review_id=payment.review_id), timeout=10
    )
    assert review.review.status == review_pb2.REVIEW_STATUS_OPEN

    # Signing out ends the session: the pages ask for a sign-in again.
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(re.compile(r"/login$"))
    await page.goto(f"{console_url(stack)}/reviews")
    await expect(page).to_have_url(re.compile(r"/login\?next="))
