"""Payments and a payment's timeline: the payment, its fraud decisions, review and audit
trail, refunds, disputes and early fraud warnings, the ledger's entries for it, and the
trace id of each event it caused. Each part comes from the service that owns it; a part the
signed-in role may not read says so instead of failing the page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from payplane.checkout.v1 import checkout_pb2, review_pb2
from payplane.common.v1 import common_pb2
from payplane.ledger.v1 import ledger_pb2

from ..backends import CHECKOUT, LEDGER, REVIEWS, ServiceRefused, Services
from ..charts import contributions_chart
from ..formatting import minor_to_text, to_datetime
from ..web import Page, View, item_path, redirect
from .reviews import HELPERS

__all__ = ["PAGE"]

routes = web.RouteTableDef()
_STATUSES = {  # short name -> the enum's name (protobuf takes either a number or a name)
    name.removeprefix("PAYMENT_STATUS_").lower(): name
    for name, value in checkout_pb2.PaymentStatus.items()
    if value
}


@dataclass(frozen=True)
class Event:
    """One line of the timeline."""

    at: datetime | None
    source: str  # checkout | review | ledger | trace
    what: str
    detail: str = ""
    link: str = ""
    trace_id: str = ""


@dataclass(frozen=True)
class Part:
    """What one service said about the payment, or why it said nothing."""

    value: Any = None
    refused: ServiceRefused | None = None


async def _part(services: Services, *args: Any) -> Part:
    try:
        return Part(await services.call(*args))
    except ServiceRefused as exc:
        return Part(refused=exc)


@routes.get("/payments")
async def listing(request: web.Request) -> web.Response:
    view = View(request)
    q = request.query.get("q", "").strip()
    if q:
        return redirect(item_path("/payments", q))
    status = request.query.get("status", "")
    status = status if status in _STATUSES else ""
    customer = request.query.get("customer", "").strip()[:255]
    reply = await view.services.call(
        CHECKOUT,
        "ListPayments",
        checkout_pb2.ListPaymentsRequest(
            status=_STATUSES.get(status, "PAYMENT_STATUS_UNSPECIFIED"),
            customer_ref=customer,
            page=common_pb2.PageRequest(page_size=50, page_token=request.query.get("page", "")),
        ),
    )
    return view.render(
        "payments.html",
        payments=list(reply.payments),
        next_page=reply.page.next_page_token,
        status=status,
        statuses=["", *_STATUSES],
        customer=customer,
        **HELPERS,
    )


def _events(
    t: checkout_pb2.PaymentTimeline, review: Part, entries: list[ledger_pb2.JournalEntry]
) -> list[Event]:
    p = t.payment
    events = [Event(to_datetime(p.created_at), "checkout", "payment created",
                    f"{minor_to_text(p.amount.amount_minor, p.amount.currency)} for "
                    f"{p.customer_ref}")]  # fmt: skip
    for d in t.decisions:
        events.append(
            Event(
                to_datetime(d.decided_at),
                "checkout",
                f"fraud decision ({d.mode}, {d.stage.replace('_', ' ')})",
                f"{HELPERS['decision_name'](d.assessment.decision)}, "
                f"score {d.assessment.score:.3f}, model {d.assessment.model_version}",
            )
        )
    for r in t.refunds:
        events.append(
            Event(to_datetime(r.created_at), "checkout", f"refund {r.status}",
                  f"{minor_to_text(r.amount.amount_minor, r.amount.currency)} ({r.reason or '-'})")
        )  # fmt: skip
    for dp in t.disputes:
        events.append(Event(to_datetime(dp.opened_at), "checkout", "dispute opened",
                            f"{dp.id}: {dp.reason}, now {dp.status}"))  # fmt: skip
    for w in t.early_fraud_warnings:
        events.append(Event(to_datetime(w.created_at), "checkout", "early fraud warning",
                            f"{w.fraud_type}; action: {w.action}"))  # fmt: skip
    if review.value is not None:
        for a in review.value.audit:
            events.append(Event(to_datetime(a.at), "review", f"review {a.action}",
                                f"by {a.actor}: {a.detail}",
                                item_path("/reviews", review.value.review.id)))  # fmt: skip
    for e in t.events:
        events.append(Event(to_datetime(e.at), "event", f"published {e.subject}", e.event_id,
                            trace_id=e.trace_id))  # fmt: skip
    for entry in entries:
        events.append(Event(to_datetime(entry.created_at), "ledger", f"booked {entry.source_type}",
                            f"{entry.id} (seq {entry.seq})"))  # fmt: skip
    return sorted(events, key=lambda e: (e.at is None, e.at or datetime.min))


@routes.get("/payments/{payment_id}")
async def timeline(request: web.Request) -> web.Response:
    view = View(request)
    payment_id = request.match_info["payment_id"]
    services = view.services
    t: checkout_pb2.PaymentTimeline = await services.call(
        CHECKOUT, "GetPaymentTimeline", checkout_pb2.GetPaymentRequest(payment_id=payment_id)
    )
    p = t.payment
    review = Part()
    if p.review_id:
        review = await _part(
            services, REVIEWS, "GetReview", review_pb2.GetReviewRequest(review_id=p.review_id)
        )
    # The ledger books a payment's money under its id and a dispute's under the dispute's.
    ledger = Part(value=[])
    entries: list[ledger_pb2.JournalEntry] = []
    for source_id in [p.id, *(d.id for d in t.disputes)]:
        part = await _part(
            services, LEDGER, "ListEntries", ledger_pb2.ListEntriesRequest(
                source_id=source_id, page=common_pb2.PageRequest(page_size=100))
        )  # fmt: skip
        if part.refused is not None:
            ledger = part
            break
        entries.extend(part.value.entries)
    live_pre = next((d for d in t.decisions if d.mode == "live" and d.stage == "pre_auth"), None)
    chart = (
        contributions_chart(
            "Feature contributions to the fraud score (logit)",
            [(f.name, f.contribution) for f in live_pre.assessment.features],
        )
        if live_pre is not None
        else None
    )
    return view.render(
        "payment.html",
        t=t,
        p=p,
        review=review,
        ledger=ledger,
        entries=sorted(entries, key=lambda e: e.seq),
        events=_events(t, review, entries),
        chart=chart,
        **HELPERS,
    )


PAGE = Page("payments", "Payments", "/payments", "payments.read", routes)
