"""Billing meters, meter events, meter event adjustments and event summaries.

Meters aggregate with `sum`, `count` or `last`, map events to customers through
`customer_mapping.event_payload_key` (default `stripe_customer_id`) and read the value from
`value_settings.event_payload_key` (default `value`); an `event_time_window` (hour, day)
counts only the latest event of each window. Only `display_name` changes after creation;
a deactivated meter refuses events and cannot back new prices.

Meter events: `identifier` is unique per account (kept for good, so at least the 24 hours
Stripe promises); `timestamp` must lie within the past 35 days and at most 5 minutes ahead,
on the customer's test clock when it has one. The emulator validates synchronously what
Stripe reports afterwards in meter error reports, with the same codes, as 400 answers.
Adjustments cancel an event within 24 hours of its receipt.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from ..billing.usage import EVENT_KIND, aggregate, event_key, usage_of
from ..errors import invalid, missing
from ..params import Params
from ..router import route
from ..state import Ctx
from ..store import Obj
from .common import list_response, public

__all__ = ["usage_quantity"]

_KIND = "billing.meter"
DAY = 86_400
_PAST_S = 35 * DAY
_FUTURE_S = 300
_CANCEL_WINDOW_S = DAY


def _event_error(message: str, code: str, param: str | None = None) -> Exception:
    return invalid(message, param=param, code=code)


@route("POST", "/v1/billing/meters", perm="billing_meters")
def create(ctx: Ctx, p: Params) -> Obj:
    display = p.string("display_name", required=True, max_len=250)
    event_name = p.string("event_name", required=True, max_len=100)
    agg = p.sub("default_aggregation", required=True)
    assert agg is not None
    formula = agg.string("formula", required=True, choices={"sum", "count", "last"})
    agg.done()
    mapping = p.sub("customer_mapping")
    payload_key = "stripe_customer_id"
    if mapping is not None:
        payload_key = mapping.string("event_payload_key", required=True, max_len=100) or ""
        mapping.string("type", required=True, choices={"by_id"})
        mapping.done()
    values = p.sub("value_settings")
    value_key = "value"
    if values is not None:
        value_key = values.string("event_payload_key", required=True, max_len=100) or ""
        values.done()
    window = p.string("event_time_window", choices={"day", "hour"})
    p.done()
    taken, _ = ctx.store.page(
        ctx.account,
        _KIND,
        limit=1,
        where=("event_name", event_name or ""),
        predicate=lambda o: o["status"] == "active",
    )
    if taken:
        raise invalid(
            f"An active meter with event_name `{event_name}` already exists: {taken[0]['id']}.",
            param="event_name",
        )
    meter: Obj = {
        "id": ctx.new_id("mtr"),
        "object": _KIND,
        "created": ctx.now,
        "customer_mapping": {"event_payload_key": payload_key, "type": "by_id"},
        "default_aggregation": {"formula": formula},
        "display_name": display,
        "event_name": event_name,
        "event_time_window": window,
        "livemode": False,
        "status": "active",
        "status_transitions": {"deactivated_at": None},
        "updated": ctx.now,
        "value_settings": {"event_payload_key": value_key},
    }
    ctx.insert(meter, ("event_name",))
    ctx.emit("billing.meter.created", meter)
    return meter


@route("GET", "/v1/billing/meters/{id}", perm="billing_meters")
def retrieve(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    return ctx.get(id, _KIND)


@route("POST", "/v1/billing/meters/{id}", perm="billing_meters")
def update(ctx: Ctx, p: Params, id: str) -> Obj:
    meter = ctx.get(id, _KIND)
    display = p.string("display_name", max_len=250)
    p.done()
    if display is not None and display != meter["display_name"]:
        before = {"display_name": meter["display_name"], "updated": meter["updated"]}
        meter["display_name"] = display
        meter["updated"] = ctx.now
        ctx.save(meter)
        ctx.emit("billing.meter.updated", meter, before)
    return meter


def _set_status(ctx: Ctx, id: str, p: Params, active: bool) -> Obj:
    p.done()
    meter = ctx.get(id, _KIND)
    wanted = "active" if active else "inactive"
    if meter["status"] == wanted:
        raise invalid(f"This meter is already {wanted}.")
    if active:
        taken, _ = ctx.store.page(
            ctx.account,
            _KIND,
            limit=1,
            where=("event_name", meter["event_name"]),
            predicate=lambda o: o["status"] == "active",
        )
        if taken:
            raise invalid(f"An active meter with event_name `{meter['event_name']}` exists.")
    meter["status"] = wanted
    meter["status_transitions"] = {"deactivated_at": None if active else ctx.now}
    meter["updated"] = ctx.now
    ctx.save(meter)
    ctx.emit("billing.meter.reactivated" if active else "billing.meter.deactivated", meter)
    return meter


@route("POST", "/v1/billing/meters/{id}/deactivate", perm="billing_meters")
def deactivate(ctx: Ctx, p: Params, id: str) -> Obj:
    return _set_status(ctx, id, p, active=False)


@route("POST", "/v1/billing/meters/{id}/reactivate", perm="billing_meters")
def reactivate(ctx: Ctx, p: Params, id: str) -> Obj:
    return _set_status(ctx, id, p, active=True)


@route("GET", "/v1/billing/meters", perm="billing_meters")
def list_(ctx: Ctx, p: Params) -> Obj:
    status = p.string("status", choices={"active", "inactive"})
    return list_response(
        ctx,
        p,
        _KIND,
        "/v1/billing/meters",
        predicate=(lambda o: o["status"] == status) if status else None,
    )


def _meter_by_event(ctx: Ctx, event_name: str) -> Obj | None:
    found, _ = ctx.store.page(
        ctx.account,
        _KIND,
        limit=1,
        where=("event_name", event_name),
        predicate=lambda o: o["event_name"] == event_name,
    )
    return found[0] if found else None


# -- meter events -----------------------------------------------------------------------------


@route("POST", "/v1/billing/meter_events", perm="billing_meters")
def create_event(ctx: Ctx, p: Params) -> Obj:
    event_name = p.string("event_name", required=True, max_len=100)
    payload_p = p.sub("payload", required=True)
    assert payload_p is not None and event_name is not None
    payload: dict[str, Any] = {k: payload_p.raw(k) for k in payload_p.keys()}
    if any(not isinstance(v, str) for v in payload.values()):
        raise invalid("Invalid payload: every value must be a string.", param="payload")
    identifier = p.string("identifier", max_len=100)
    timestamp = p.integer("timestamp", min=0)
    p.done()
    meter = _meter_by_event(ctx, event_name)
    if meter is None:
        raise _event_error(
            f"No active meter was found for event_name `{event_name}`.",
            "meter_event_no_meter",
            "event_name",
        )
    if meter["status"] != "active":
        raise _event_error(
            f"The meter for event_name `{event_name}` is deactivated.",
            "archived_meter",
            "event_name",
        )
    cus_key = meter["customer_mapping"]["event_payload_key"]
    customer_id = payload.get(cus_key)
    if not customer_id:
        raise _event_error(
            f"The payload has no `{cus_key}` to map the event to a customer.",
            "meter_event_no_customer_defined",
            f"payload[{cus_key}]",
        )
    customer = ctx.find(customer_id, "customer")
    if customer is None:
        raise _event_error(
            f"No such customer: '{customer_id}'",
            "meter_event_customer_not_found",
            f"payload[{cus_key}]",
        )
    value_key = meter["value_settings"]["event_payload_key"]
    raw_value = payload.get(value_key)
    if raw_value is None and meter["default_aggregation"]["formula"] != "count":
        raise _event_error(
            f"The payload has no `{value_key}`.",
            "meter_event_value_not_found",
            f"payload[{value_key}]",
        )
    try:
        value = Decimal(raw_value) if raw_value is not None else Decimal(1)
        if not value.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        raise _event_error(
            f"The value `{raw_value}` is not a number.",
            "meter_event_invalid_value",
            f"payload[{value_key}]",
        ) from None
    cctx = ctx.on_clock(customer.get("test_clock"))
    now = cctx.now
    ts = now if timestamp is None else timestamp
    if ts > now + _FUTURE_S:
        raise _event_error(
            "The timestamp must be at most 5 minutes in the future.",
            "timestamp_in_future",
            "timestamp",
        )
    if ts < now - _PAST_S:
        raise _event_error(
            "The timestamp must be within the past 35 calendar days.",
            "timestamp_too_far_in_past",
            "timestamp",
        )
    identifier = identifier or ctx.new_id("mev", 24)[4:]
    key = event_key(ctx.account, identifier)
    if ctx.store.get(key) is not None:
        raise _event_error(
            f"An event with identifier `{identifier}` was already received; identifiers must "
            "be unique within a rolling period of at least 24 hours.",
            "duplicate_meter_event",
            "identifier",
        )
    event: Obj = {
        "id": key,
        "object": EVENT_KIND,
        "created": now,
        "event_name": event_name,
        "identifier": identifier,
        "livemode": False,
        "payload": payload,
        "timestamp": ts,
        "_meter": meter["id"],
        "_customer": customer_id,
        "_value": str(value),
        "_received": ctx.em.now(),
    }
    ctx.insert(event)
    usage_of(ctx.em).add(ctx.account, meter["id"], customer_id, ts, value, identifier)
    out = public(event)
    del out["id"]
    return out


@route("POST", "/v1/billing/meter_event_adjustments", perm="billing_meters")
def create_adjustment(ctx: Ctx, p: Params) -> Obj:
    event_name = p.string("event_name", required=True, max_len=100)
    type_ = p.string("type", choices={"cancel"}) or "cancel"
    cancel = p.sub("cancel", required=True)
    assert cancel is not None
    identifier = cancel.string("identifier", required=True, max_len=100)
    cancel.done()
    p.done()
    assert identifier is not None
    event = ctx.store.get(event_key(ctx.account, identifier))
    if event is None or event["event_name"] != event_name:
        raise missing("meter event", identifier, "cancel[identifier]")
    if event.get("_canceled"):
        raise invalid(
            f"The meter event `{identifier}` is already canceled.", param="cancel[identifier]"
        )
    if ctx.em.now() - int(event["_received"]) > _CANCEL_WINDOW_S:
        raise invalid(
            "You can only cancel events within 24 hours of Stripe receiving them.",
            param="cancel[identifier]",
        )
    event["_canceled"] = True
    ctx.save(event)
    usage_of(ctx.em).remove(ctx.account, event["_meter"], event["_customer"], identifier)
    return {
        "object": "billing.meter_event_adjustment",
        "cancel": {"identifier": identifier},
        "event_name": event_name,
        "livemode": False,
        "status": "complete",
        "type": type_,
    }


def usage_quantity(ctx: Ctx, meter_id: str, customer: str, start: int, end: int) -> Decimal:
    """A customer's usage on a meter over [start, end), per the meter's formula."""
    meter = ctx.find(meter_id, _KIND)
    if meter is None:
        return Decimal(0)
    points = list(usage_of(ctx.em).window(ctx.account, meter_id, customer, start, end))
    return aggregate(meter, points)


@route("GET", "/v1/billing/meters/{id}/event_summaries", perm="billing_meters")
def event_summaries(ctx: Ctx, p: Params, id: str) -> Obj:
    meter = ctx.get(id, _KIND)
    customer = p.string("customer", required=True)
    start = p.integer("start_time", required=True, min=0)
    end = p.integer("end_time", required=True, min=0)
    window = p.string("value_grouping_window", choices={"day", "hour"})
    limit = p.integer("limit", min=1, max=100) or 10
    after = p.string("starting_after")
    before = p.string("ending_before")
    p.done()
    assert customer is not None and start is not None and end is not None
    ctx.get(customer, "customer", param="customer")
    step = {"hour": 3600, "day": DAY}.get(window or "", 60)
    for name, value in (("start_time", start), ("end_time", end)):
        if value % step:
            unit = window or "minute"
            raise invalid(f"{name} must be aligned with {unit} boundaries.", param=name)
    if end <= start:
        raise invalid("end_time must be after start_time.", param="end_time")
    state = usage_of(ctx.em)
    bounds = (
        [(start, end)]
        if window is None
        else [(s, min(s + step, end)) for s in range(start, end, step)]
    )
    summaries = []
    for s, e in bounds:
        points = list(state.window(ctx.account, id, customer, s, e))
        if window is not None and not points:
            continue
        total = aggregate(meter, points)
        summaries.append(
            {
                "id": f"mtrusg_{id[4:]}_{s}",
                "object": "billing.meter_event_summary",
                "aggregated_value": float(total),
                "end_time": e,
                "livemode": False,
                "meter": id,
                "start_time": s,
            }
        )
    ids = [str(sm["id"]) for sm in summaries]
    lo = ids.index(after) + 1 if after in ids else 0
    hi = ids.index(before) if before in ids else len(ids)
    if before in ids:
        page = summaries[max(lo, hi - limit) : hi]
        has_more = hi - limit > lo
    else:
        page = summaries[lo : lo + limit]
        has_more = lo + limit < hi
    return {
        "object": "list",
        "data": page,
        "has_more": has_more,
        "url": f"/v1/billing/meters/{id}/event_summaries",
    }
