"""The discrepancy queue: what reconciliation found between the books and Stripe, with its
evidence and audit trail; finance resolves (accept, dismiss, heal) with a reason. A chart
shows what was found per day by kind."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

from aiohttp import web

from payplane.common.v1 import common_pb2
from payplane.ledger.v1 import ledger_pb2

from ..backends import LEDGER, ServiceRefused, Services
from ..charts import stacked_bars_by_day
from ..web import Page, View, item_path, redirect

__all__ = ["PAGE"]

routes = web.RouteTableDef()
STATUSES = ("open", "healed", "resolved", "dismissed", "all")
KINDS = (
    "", "missing_in_ledger", "missing_in_stripe", "amount_mismatch", "fee_mismatch",
    "fx_mismatch", "unbooked_dispute", "payout_mismatch", "timing",
)  # fmt: skip
RESOLUTIONS = (
    ("accept", "accept: the books stand as they are"),
    ("dismiss", "dismiss: not a problem"),
    ("heal", "heal: book the correction derived from Stripe"),
)
CHART_DAYS = 30
_CHART_LIMIT = 5_000  # discrepancies read for the chart at most


Series = dict[str, dict[date, int]]


async def found_per_day(services: Services, today: date) -> tuple[list[date], Series]:
    """Discrepancies found per day and kind over the last CHART_DAYS days."""
    days = [today - timedelta(days=n) for n in range(CHART_DAYS - 1, -1, -1)]
    series: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    token, seen = "", 0
    while seen < _CHART_LIMIT:
        reply = await services.call(
            LEDGER,
            "ListDiscrepancies",
            ledger_pb2.ListDiscrepanciesRequest(
                page=common_pb2.PageRequest(page_size=500, page_token=token)
            ),
        )
        for d in reply.discrepancies:
            day = d.created_at.ToDatetime(tzinfo=UTC).date()
            if day >= days[0]:
                series[d.kind][day] += 1
        seen += len(reply.discrepancies)
        token = reply.page.next_page_token
        if not token:
            break
    return days, {k: dict(v) for k, v in series.items()}


@routes.get("/discrepancies")
async def queue(request: web.Request) -> web.Response:
    view = View(request)
    status = request.query.get("status", "open")
    status = status if status in STATUSES else "open"
    kind = request.query.get("kind", "")
    kind = kind if kind in KINDS else ""
    reply = await view.services.call(
        LEDGER,
        "ListDiscrepancies",
        ledger_pb2.ListDiscrepanciesRequest(
            status="" if status == "all" else status,
            kind=kind,
            page=common_pb2.PageRequest(page_size=100, page_token=request.query.get("page", "")),
        ),
    )
    days, series = await found_per_day(view.services, datetime.now(UTC).date())
    chart = stacked_bars_by_day(
        f"Discrepancies found per day by kind, last {CHART_DAYS} days", days, series
    )
    return view.render(
        "discrepancies.html",
        discrepancies=list(reply.discrepancies),
        next_page=reply.page.next_page_token,
        status=status,
        statuses=STATUSES,
        kind=kind,
        kinds=KINDS,
        chart=chart,
    )


@routes.get("/discrepancies/{discrepancy_id}")
async def detail(request: web.Request) -> web.Response:
    view = View(request)
    d = await view.services.call(
        LEDGER,
        "GetDiscrepancy",
        ledger_pb2.GetDiscrepancyRequest(discrepancy_id=request.match_info["discrepancy_id"]),
    )
    return view.render(
        "discrepancy.html",
        d=d.discrepancy,
        audit=list(d.audit),
        resolutions=RESOLUTIONS,
        is_open=d.discrepancy.status == "open",
    )


@routes.post("/discrepancies/{discrepancy_id}/resolve")
async def resolve(request: web.Request) -> web.Response:
    view = View(request)
    disc_id = request.match_info["discrepancy_id"]
    form = await request.post()
    try:
        resolved = await view.services.call(
            LEDGER,
            "ResolveDiscrepancy",
            ledger_pb2.ResolveDiscrepancyRequest(
                discrepancy_id=disc_id,
                resolution=str(form.get("resolution", "")),
                reason=str(form.get("reason", "")).strip(),
            ),
            idempotency_key=str(form.get("idem", "")) or view.new_key(),
        )
    except ServiceRefused as exc:
        if exc.code.name not in ("INVALID_ARGUMENT", "FAILED_PRECONDITION"):
            raise
        view.flash(f"ledger refused: {exc.details}", error=True)
    else:
        view.flash(f"Discrepancy {resolved.status}.")
    return redirect(item_path("/discrepancies", disc_id))


PAGE = Page("discrepancies", "Discrepancies", "/discrepancies", "discrepancies.read", routes)
