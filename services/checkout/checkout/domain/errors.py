"""checkout's errors, each a grpckit domain error so the one table maps it to a status.

CheckoutError (grpckit DomainError)
├── InvalidPayment       InvalidArgument: bad amount, currency, metadata, missing field
├── PaymentNotFound      NotFound
├── RefundNotAllowed     FailedPrecondition: wrong state, or more than remains refundable
├── PaymentStateError    FailedPrecondition: capture/cancel/confirm in the wrong state
├── ReviewNotFound       NotFound
├── ReviewNotAllowed     FailedPrecondition: already decided
├── InvalidReview        InvalidArgument: missing reason, bad filter
└── StripeUnreachable    Unavailable: Stripe did not answer; retry with the same key
"""

from __future__ import annotations

from payplane.grpckit.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable

__all__ = [
    "InvalidPayment",
    "InvalidReview",
    "PaymentNotFound",
    "PaymentStateError",
    "RefundNotAllowed",
    "ReviewNotAllowed",
    "ReviewNotFound",
    "StripeUnreachable",
]


class InvalidPayment(InvalidArgument):
    pass


class PaymentNotFound(NotFound):
    pass


class RefundNotAllowed(FailedPrecondition):
    pass


class StripeUnreachable(Unavailable):
    pass


class PaymentStateError(FailedPrecondition):
    pass


class ReviewNotFound(NotFound):
    pass


class ReviewNotAllowed(FailedPrecondition):
    pass


class InvalidReview(InvalidArgument):
    pass
