"""The fraud review queue: held payments with their evidence and the fraud engine's
explanation; a reviewer approves (captures) or rejects (cancels or refunds), with a reason."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from payplane.checkout.v1 import checkout_pb2, review_pb2
from payplane.common.v1 import common_pb2

from ..backends import REVIEWS, ServiceRefused
from ..charts import contributions_chart
from ..web import Page, View, item_path, redirect

__all__ = ["PAGE"]

routes = web.RouteTableDef()
_STATUSES = {
    "open": review_pb2.REVIEW_STATUS_OPEN,
    "approved": review_pb2.REVIEW_STATUS_APPROVED,
    "rejected": review_pb2.REVIEW_STATUS_REJECTED,
    "closed": review_pb2.REVIEW_STATUS_CLOSED,
    "all": review_pb2.REVIEW_STATUS_UNSPECIFIED,
}
_REASONS = ("", "fraud_score", "fraud_rule", "radar_elevated", "early_fraud_warning")


def review_status(value: int) -> str:
    return review_pb2.ReviewStatus.Name(value).removeprefix("REVIEW_STATUS_").lower()


def payment_status(value: int) -> str:
    name = checkout_pb2.PaymentStatus.Name(value).removeprefix("PAYMENT_STATUS_")
    return name.replace("_", " ").lower()


def decision_name(value: int) -> str:
    return checkout_pb2.FraudDecision.Name(value).removeprefix("FRAUD_DECISION_").lower()


HELPERS: dict[str, Any] = {
    "review_status": review_status,
    "payment_status": payment_status,
    "decision_name": decision_name,
}


@routes.get("/reviews")
async def queue(request: web.Request) -> web.Response:
    view = View(request)
    status = request.query.get("status", "open")
    if status not in _STATUSES:
        status = "open"
    reason = request.query.get("reason", "")
    reason = reason if reason in _REASONS else ""
    reply = await view.services.call(
        REVIEWS,
        "ListReviews",
        review_pb2.ListReviewsRequest(
            status=_STATUSES[status],
            reason=reason,
            page=common_pb2.PageRequest(page_size=50, page_token=request.query.get("page", "")),
        ),
    )
    return view.render(
        "reviews.html",
        reviews=list(reply.reviews),
        next_page=reply.page.next_page_token,
        status=status,
        statuses=list(_STATUSES),
        reason=reason,
        reasons=_REASONS,
        **HELPERS,
    )


@routes.get("/reviews/{review_id}")
async def detail(request: web.Request) -> web.Response:
    view = View(request)
    d = await view.services.call(
        REVIEWS, "GetReview", review_pb2.GetReviewRequest(review_id=request.match_info["review_id"])
    )
    fraud = d.payment.fraud
    chart = contributions_chart(
        "Feature contributions to the fraud score (logit)",
        [(f.name, f.contribution) for f in fraud.features],
    )
    return view.render(
        "review.html",
        d=d,
        chart=chart,
        features=sorted(fraud.features, key=lambda f: -abs(f.contribution)),
        is_open=d.review.status == review_pb2.REVIEW_STATUS_OPEN,
        **HELPERS,
    )


async def _decide(request: web.Request, method: str, done: str) -> web.Response:
    view = View(request)
    review_id = request.match_info["review_id"]
    form = await request.post()
    try:
        await view.services.call(
            REVIEWS,
            method,
            review_pb2.DecideReviewRequest(
                review_id=review_id, reason=str(form.get("reason", "")).strip()
            ),
            idempotency_key=str(form.get("idem", "")) or view.new_key(),
        )
    except ServiceRefused as exc:
        if exc.code.name not in ("INVALID_ARGUMENT", "FAILED_PRECONDITION"):
            raise  # refused outright (e.g. not a reviewer): the service's word, on its own page
        view.flash(f"checkout refused: {exc.details}", error=True)
    else:
        view.flash(done)
    return redirect(item_path("/reviews", review_id))


@routes.post("/reviews/{review_id}/approve")
async def approve(request: web.Request) -> web.Response:
    return await _decide(request, "ApproveReview", "Review approved.")


@routes.post("/reviews/{review_id}/reject")
async def reject(request: web.Request) -> web.Response:
    return await _decide(request, "RejectReview", "Review rejected.")


PAGE = Page("reviews", "Fraud reviews", "/reviews", "reviews.read", routes)
