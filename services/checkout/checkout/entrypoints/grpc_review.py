"""The ReviewService servicer: translate protobuf to the review desk and back."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from payplane.checkout.v1 import review_pb2, review_pb2_grpc
from payplane.common.v1 import common_pb2
from payplane.grpckit import PageTokens, current_actor, current_caller, fields

from ..domain.errors import InvalidReview
from ..domain.reviews import Review, ReviewStatus
from ..service.reviews import ReviewDesk
from .grpc_api import payment_to_proto

__all__ = ["ReviewServicer", "review_to_proto"]

Ctx = grpc.aio.ServicerContext[Any, Any]

_STATUS = {
    ReviewStatus.OPEN: review_pb2.REVIEW_STATUS_OPEN,
    ReviewStatus.APPROVED: review_pb2.REVIEW_STATUS_APPROVED,
    ReviewStatus.REJECTED: review_pb2.REVIEW_STATUS_REJECTED,
    ReviewStatus.CLOSED: review_pb2.REVIEW_STATUS_CLOSED,
}
_STATUS_BACK = {v: k for k, v in _STATUS.items()}
LIST = "/payplane.checkout.v1.ReviewService/ListReviews"
# An age filter beyond a century selects nothing more than a century does; bounded, it stays
# an offset the clock and the database can hold.
MAX_AGE_S = 100 * 366 * 86_400
MAX_REASON = 1_000  # a reviewer's reason, kept in the audit trail and the review.closed event
MAX_REASON_FILTER = 64


def _ts(seconds: float | None) -> Timestamp | None:
    if seconds is None:
        return None
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def review_to_proto(r: Review) -> review_pb2.Review:
    return review_pb2.Review(
        id=r.id,
        payment_id=r.payment_id,
        status=_STATUS[r.status],
        reason=r.reason,
        opened_at=_ts(r.opened_at),
        closed_at=_ts(r.closed_at),
        decided_by=r.decided_by,
        decision_reason=r.decision_reason,
        auto_resolved=r.auto_resolved,
        stripe_review_id=r.stripe_review_id,
    )


def _decision(request: review_pb2.DecideReviewRequest) -> None:
    fields.object_id(request.review_id, "review_id")
    fields.text(request.reason, "reason", MAX_REASON)


class ReviewServicer(review_pb2_grpc.ReviewServiceServicer):
    def __init__(self, desk: ReviewDesk, page_tokens: PageTokens) -> None:
        self.desk = desk
        self.tokens = page_tokens

    async def ListReviews(
        self, request: review_pb2.ListReviewsRequest, context: Ctx
    ) -> review_pb2.ListReviewsResponse:
        status = None
        if request.status != review_pb2.REVIEW_STATUS_UNSPECIFIED:
            if request.status not in _STATUS_BACK:
                raise InvalidReview("status: unknown value")
            status = _STATUS_BACK[request.status]
        if request.page.page_size < 0:
            raise InvalidReview("page.page_size: must not be negative")
        for name in ("min_age_s", "max_age_s"):
            if not 0 <= getattr(request, name) <= MAX_AGE_S:
                raise InvalidReview(f"{name}: from 0 to {MAX_AGE_S} seconds (0: no bound)")
        if request.min_age_s and request.max_age_s and request.min_age_s > request.max_age_s:
            raise InvalidReview("min_age_s, max_age_s: min_age_s must not exceed max_age_s")
        fields.text(request.reason, "reason", MAX_REASON_FILTER)
        scope = PageTokens.scope(
            LIST, request.status, request.reason, request.min_age_s, request.max_age_s
        )
        items, cursor = await self.desk.list_reviews(
            status=status,
            reason=request.reason,
            min_age_s=request.min_age_s,
            max_age_s=request.max_age_s,
            page_size=request.page.page_size,
            page_token=self.tokens.open(scope, request.page.page_token),
        )
        token = self.tokens.seal(scope, cursor)
        return review_pb2.ListReviewsResponse(
            reviews=[review_to_proto(r) for r in items],
            page=common_pb2.PageResponse(next_page_token=token, has_more=bool(token)),
        )

    async def GetReview(
        self, request: review_pb2.GetReviewRequest, context: Ctx
    ) -> review_pb2.ReviewDetail:
        fields.object_id(request.review_id, "review_id")
        view = await self.desk.get_review(request.review_id)
        c = view.customer
        history = review_pb2.CustomerHistory(
            payments=c["payments"],
            succeeded=c["succeeded"],
            failed=c["failed"],
            disputed=c["disputed"],
            refunded_as_fraud=c["refunded_as_fraud"],
            succeeded_amount=common_pb2.Money(
                amount_minor=c["succeeded_amount"], currency=view.payment.currency
            ),
            first_payment_at=_ts(c["first_payment_at"]),
        )
        return review_pb2.ReviewDetail(
            review=review_to_proto(view.review),
            payment=payment_to_proto(view.payment, view.decisions, viewer=current_caller()),
            customer_history=history,
            audit=[
                review_pb2.AuditEntry(at=_ts(at), actor=actor, action=action, detail=detail)
                for at, actor, action, detail in view.audit
            ],
        )

    async def ApproveReview(
        self, request: review_pb2.DecideReviewRequest, context: Ctx
    ) -> review_pb2.Review:
        _decision(request)
        review = await self.desk.approve(
            current_caller() or "", request.review_id, request.reason, actor=current_actor(context)
        )
        return review_to_proto(review)

    async def RejectReview(
        self, request: review_pb2.DecideReviewRequest, context: Ctx
    ) -> review_pb2.Review:
        _decision(request)
        review = await self.desk.reject(
            current_caller() or "", request.review_id, request.reason, actor=current_actor(context)
        )
        return review_to_proto(review)
