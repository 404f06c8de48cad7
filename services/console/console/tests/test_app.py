"""The console over HTTP with the services replaced by a fake (unit level): sign-in, the
session cookie's attributes, CSRF on every form, security headers, what each role is shown,
and that the console forwards a request rather than deciding it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from aiohttp.test_utils import TestClient, TestServer
from google.protobuf.message import Message

from console.backends import Backends, ServiceRefused, Services, Target
from console.bootstrap import _HERE, templates
from console.pages import PAGES
from console.pages.core import routes as core_routes
from console.passwords import hash_password
from console.roles import Role
from console.sessions import SessionCodec
from console.users import Directory, User, parse_users
from console.web import Console, build_app
from payplane.checkout.v1 import checkout_pb2, review_pb2

HASH = hash_password("test-password-1", log2_n=10, p=1)
ROLES = {"rita": "reviewer", "fred": "finance", "sue": "support", "al": "admin"}
USERS = ",".join(f"{name}:{role}:{HASH}" for name, role in ROLES.items())


@dataclass
class Recorded:
    calls: list[tuple[str, str, Message, str, str]] = field(default_factory=list)
    replies: dict[str, Any] = field(default_factory=dict)


class FakeServices(Services):
    def __init__(self, backends: Backends, user: User, rec: Recorded) -> None:
        super().__init__(backends, user)
        self.rec = rec

    async def call(
        self, target: Target, method: str, request: Message, *, idempotency_key: str = ""
    ) -> Any:
        self.rec.calls.append((target.label, method, request, idempotency_key, self.user.name))
        reply = self.rec.replies.get(method)
        if isinstance(reply, Exception):
            raise reply
        return reply


class FakeBackends(Backends):
    def __init__(self, rec: Recorded) -> None:
        super().__init__({}, {}, 1.0)
        self.rec = rec

    def for_user(self, user: User) -> Services:
        return FakeServices(self, user, self.rec)


def review_detail(status: int = review_pb2.REVIEW_STATUS_OPEN) -> review_pb2.ReviewDetail:
    return review_pb2.ReviewDetail(
        review=review_pb2.Review(
            id="rev_1", payment_id="pay_1", status=status, reason="fraud_score"
        ),
        payment=checkout_pb2.Payment(
            id="pay_1",
            amount={"amount_minor": 1_000_000, "currency": "usd"},
            status=checkout_pb2.PAYMENT_STATUS_REQUIRES_CAPTURE,
            next_action=checkout_pb2.NextAction(client_secret="pi_1_secret_DONOTSHOW"),
            fraud=checkout_pb2.FraudAssessment(
                decision=checkout_pb2.FRAUD_DECISION_REVIEW, score=0.9, model_version="m1",
                features=[checkout_pb2.FeatureContribution(name="first_purchase", value=1,
                                                           weight=0.4, contribution=0.4)],
            ),
        ),
    )  # fmt: skip


@pytest.fixture
def rec() -> Recorded:
    return Recorded()


def make_app(rec: Recorded, *, secure: bool = False) -> Any:
    console = Console(
        codec=SessionCodec("k" * 40, max_age_s=3600, idle_s=600),
        directory=Directory(parse_users(USERS)),
        backends=FakeBackends(rec),
        templates=templates(),
        pages=PAGES,
        cookie_secure=secure,
    )
    return build_app(console, core_routes, str(_HERE / "static"))


@pytest.fixture
async def client(rec: Recorded) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(make_app(rec))) as c:
        yield c


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def sign_in(client: TestClient[Any, Any], name: str) -> str:
    """Sign in; returns the CSRF token of the signed-in session."""
    login = await client.get("/login")
    token = csrf_of(await login.text())
    reply = await client.post(
        "/login", data={"name": name, "password": "test-password-1", "csrf_token": token},
        allow_redirects=False,
    )  # fmt: skip
    assert reply.status == 303, await reply.text()
    home = await client.get("/")
    return csrf_of(await home.text())


async def test_pages_need_a_signed_in_user(client: TestClient[Any, Any], rec: Recorded) -> None:
    reply = await client.get("/reviews?status=open", allow_redirects=False)
    assert reply.status == 303
    assert reply.headers["Location"] == "/login?next=%2Freviews%3Fstatus%3Dopen"
    assert rec.calls == []
    assert (await client.get("/healthz")).status == 200


async def test_sign_in_refuses_a_wrong_password_and_sets_a_strict_cookie(
    client: TestClient[Any, Any],
) -> None:
    token = csrf_of(await (await client.get("/login")).text())
    wrong = await client.post(
        "/login", data={"name": "rita", "password": "nope", "csrf_token": token}
    )
    assert wrong.status == 401 and "wrong password" in await wrong.text()
    ok = await client.post(
        "/login",
        data={"name": "rita", "password": "test-password-1", "csrf_token": token,
              "next": "//evil.example/x"},
        allow_redirects=False,
    )  # fmt: skip
    assert ok.status == 303 and ok.headers["Location"] == "/"  # never off-site
    cookie = ok.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie
    home = await client.get("/")
    assert "rita (reviewer)" in await home.text()


async def test_secure_cookies_when_configured(rec: Recorded) -> None:
    async with TestClient(TestServer(make_app(rec, secure=True))) as client:
        reply = await client.get("/login")
        cookie = reply.headers["Set-Cookie"]
        assert cookie.startswith("__Host-payplane_console=") and "Secure" in cookie
        assert reply.headers["Strict-Transport-Security"].startswith("max-age=")


async def test_the_sign_in_form_itself_needs_its_csrf_token(client: TestClient[Any, Any]) -> None:
    await client.get("/login")
    reply = await client.post("/login", data={"name": "rita", "password": "test-password-1"})
    assert reply.status == 403
    assert "did not come from this console" in await reply.text()


async def test_a_post_without_the_sessions_token_is_refused_before_any_service(
    client: TestClient[Any, Any], rec: Recorded
) -> None:
    token = await sign_in(client, "rita")
    for data in ({"reason": "ok"}, {"reason": "ok", "csrf_token": "forged"}):
        reply = await client.post("/reviews/rev_1/approve", data=data)
        assert reply.status == 403
    foreign = await client.post(
        "/reviews/rev_1/approve",
        data={"reason": "ok", "csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert foreign.status == 403
    assert rec.calls == []


async def test_a_post_with_the_token_reaches_the_service_as_the_person(
    client: TestClient[Any, Any], rec: Recorded
) -> None:
    token = await sign_in(client, "rita")
    rec.replies["ApproveReview"] = review_pb2.Review(id="rev_1")
    reply = await client.post(
        "/reviews/rev_1/approve",
        data={"reason": " known customer ", "csrf_token": token, "idem": "k-123"},
        allow_redirects=False,
    )
    assert reply.status == 303 and reply.headers["Location"] == "/reviews/rev_1"
    [(service, method, request, key, person)] = rec.calls
    assert (service, method, key, person) == ("checkout", "ApproveReview", "k-123", "rita")
    assert isinstance(request, review_pb2.DecideReviewRequest)
    assert request.reason == "known customer"


async def test_the_console_forwards_what_it_hides_and_shows_the_services_refusal(
    client: TestClient[Any, Any], rec: Recorded
) -> None:
    """A support user is not offered the decision, but a forged request is not decided by
    the console: the service is asked and its refusal is shown as it is."""
    token = await sign_in(client, "sue")
    rec.replies["GetReview"] = review_detail()
    page = await (await client.get("/reviews/rev_1")).text()
    assert 'action="/reviews/rev_1/approve"' not in page
    assert "Only reviewers decide reviews." in page
    rec.replies["ApproveReview"] = ServiceRefused(
        Target("checkout", object, "checkout"), "ApproveReview",
        grpc.StatusCode.PERMISSION_DENIED, "caller 'support' may not call ApproveReview",
    )  # fmt: skip
    reply = await client.post(
        "/reviews/rev_1/approve", data={"reason": "let me", "csrf_token": token}
    )
    assert reply.status == 403
    text = await reply.text()
    assert "PERMISSION_DENIED" in text and "caller &#39;support&#39; may not call" in text
    assert [c[1] for c in rec.calls] == ["GetReview", "ApproveReview"]


async def test_each_role_sees_its_own_navigation_and_buttons(
    client: TestClient[Any, Any], rec: Recorded
) -> None:
    rec.replies["GetReview"] = review_detail()
    expected = {
        "rita": (["Fraud reviews", "Payments"], True),
        "sue": (["Fraud reviews", "Discrepancies", "Payments"], False),
        "al": (["Fraud reviews", "Discrepancies", "Payments"], False),
        "fred": (["Discrepancies"], False),
    }
    for name, (nav, decides) in expected.items():
        client.session.cookie_jar.clear()
        await sign_in(client, name)
        page = await (await client.get("/reviews/rev_1")).text()
        shown = re.findall(r'<nav aria-label="main">(.*?)</nav>', page, re.S)[0]
        assert re.findall(r">([^<]+)</a>", shown) == nav, name
        assert ('data-testid="approve"' in page) is decides, name


async def test_no_secret_reaches_a_page_and_every_page_has_the_security_headers(
    client: TestClient[Any, Any], rec: Recorded
) -> None:
    await sign_in(client, "rita")
    rec.replies["GetReview"] = review_detail()
    reply = await client.get("/reviews/rev_1")
    text = await reply.text()
    assert "secret" not in text.lower()
    assert "<script" not in text and " style=" not in text  # the CSP allows neither
    for response in (reply, await client.get("/login"), await client.get("/static/console.css")):
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert "script-src" not in response.headers["Content-Security-Policy"]
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["Cache-Control"] == "no-store"


async def test_sign_out_ends_the_session(client: TestClient[Any, Any]) -> None:
    token = await sign_in(client, "rita")
    out = await client.post("/logout", data={"csrf_token": token}, allow_redirects=False)
    assert out.status == 303 and out.headers["Location"] == "/login"
    assert (await client.get("/", allow_redirects=False)).status == 303


async def test_a_session_ends_when_its_user_is_removed_or_changes_password(rec: Recorded) -> None:
    app = make_app(rec)
    async with TestClient(TestServer(app)) as client:
        await sign_in(client, "rita")
        assert (await client.get("/", allow_redirects=False)).status == 200
        console: Console = next(iter(app.values()))
        users = console.directory.users
        users["rita"] = User("rita", Role.REVIEWER, hash_password("new-password-1", log2_n=10, p=1))
        assert (await client.get("/", allow_redirects=False)).status == 303
        await sign_in(client, "al")
        del users["al"]
        assert (await client.get("/", allow_redirects=False)).status == 303
