"""Reading subscription parameters shared by create, update, items and previews."""

from __future__ import annotations

from ..billing.lifecycle import SUB
from ..errors import invalid
from ..params import Params
from ..state import Ctx
from ..store import Obj
from .customers import check_default_payment_method
from .prices import price_from_item
from .tax_rates import check_rates

__all__ = [
    "ENDED",
    "PAYMENT_BEHAVIORS",
    "PRORATION",
    "add_invoice_items",
    "check_items",
    "get_subscription",
    "rate_objects",
    "read_automatic_tax",
    "read_billing_mode",
    "read_default_pm",
    "read_item",
    "read_payment_settings",
    "read_trial_settings",
    "timestamp_or",
]


PAYMENT_BEHAVIORS = frozenset(
    {"allow_incomplete", "default_incomplete", "error_if_incomplete", "pending_if_incomplete"}
)


PRORATION = frozenset({"always_invoice", "create_prorations", "none"})


_MAX_ITEMS = 20


ENDED = ("canceled", "incomplete_expired")


def get_subscription(ctx: Ctx, sub_id: str, param: str = "id") -> tuple[Ctx, Obj]:
    """The subscription and a context on its own timeline."""
    sub = ctx.get(sub_id, SUB, param=param)
    return ctx.on_clock(sub.get("test_clock")), sub


def rate_objects(ctx: Ctx, ids: list[str]) -> list[Obj]:
    from .common import public

    return [public(ctx.get(rate_id, "tax_rate")) for rate_id in ids]


def timestamp_or(p: Params, key: str, words: set[str]) -> int | str | None:
    raw = p.raw(key)
    if raw is None or raw == "":
        return None
    if isinstance(raw, str) and raw in words:
        return raw
    return p.integer(key, min=0)


def read_item(ctx: Ctx, ip: Params, prefix: str) -> tuple[Obj, int | None, bool, Obj]:
    """(price, quantity, quantity given, extra fields) of one item parameter."""
    price = price_from_item(ctx, ip, prefix, recurring=True)
    qty_given = ip.has("quantity")
    qty = ip.integer("quantity", min=0)
    extra: Obj = {}
    if ip.has("metadata"):
        extra["metadata"] = ip.metadata() or {}
    if ip.has("tax_rates"):
        extra["tax_rates"] = check_rates(ctx, ip.strings("tax_rates"), f"{prefix}[tax_rates]")
    for unsupported in ("discounts", "billing_thresholds", "current_trial"):
        if ip.has(unsupported) and ip.raw(unsupported) not in ("", None):
            raise invalid(
                f"{prefix}[{unsupported}] is not supported by the emulator (use discounts on "
                "the subscription)."
                if unsupported == "discounts"
                else f"{prefix}[{unsupported}] is not supported in this API version.",
                param=f"{prefix}[{unsupported}]",
            )
    if qty_given and price["recurring"]["usage_type"] == "metered":
        raise invalid(
            "Quantity should not be specified where usage_type is `metered`. Remove quantity "
            f"from `{prefix}`.",
            param=f"{prefix}[quantity]",
        )
    return price, qty, qty_given, extra


def check_items(items: list[Obj], currency: str, interval: tuple[str, int] | None) -> None:
    if not items:
        raise invalid("A subscription must have at least one active plan.", param="items")
    if len(items) > _MAX_ITEMS:
        raise invalid(f"A subscription can have at most {_MAX_ITEMS} items.", param="items")
    seen: set[str] = set()
    for item in items:
        price = item["price"]
        if price["id"] in seen:
            raise invalid(
                "Cannot add multiple subscription items with the same plan: " + price["id"],
                param="items",
            )
        seen.add(price["id"])
        rec = price["recurring"]
        if price["currency"] != currency or (
            interval is not None and (rec["interval"], rec["interval_count"]) != interval
        ):
            raise invalid(
                "Currency and interval fields must match across all plans on this "
                "subscription. Found mismatch in " + price["id"] + ".",
                param="items",
            )
        interval = interval or (rec["interval"], rec["interval_count"])


def add_invoice_items(ctx: Ctx, p: Params, cus: Obj, sub_id: str, currency: str) -> list[Obj]:
    """add_invoice_items[]: one-time prices (or price_data) added to the next invoice."""
    raw = p.array("add_invoice_items")
    if not raw:
        return []
    from .invoice_items import new_invoice_item

    out = []
    for i, item in enumerate(raw):
        ip = Params(item if isinstance(item, dict) else None, f"add_invoice_items[{i}]")
        ii = new_invoice_item(
            ctx, ip, cus, currency=currency, subscription=sub_id, prefix=f"add_invoice_items[{i}]"
        )
        ip.done()
        out.append(ii)
    return out


def read_trial_settings(p: Params | None, current: Obj | None = None) -> Obj:
    out = current or {"end_behavior": {"missing_payment_method": "create_invoice"}}
    if p is None:
        return out
    end = p.sub("end_behavior", required=True)
    assert end is not None
    missing_pm = end.string(
        "missing_payment_method", required=True, choices={"cancel", "create_invoice", "pause"}
    )
    end.string("billing_cycle_anchor", choices={"now", "unchanged"})
    end.done()
    p.done()
    return {"end_behavior": {"missing_payment_method": missing_pm}}


def read_payment_settings(p: Params | None) -> Obj:
    out: Obj = {
        "payment_method_options": None,
        "payment_method_types": None,
        "save_default_payment_method": "off",
    }
    if p is None:
        return out
    types = p.strings("payment_method_types")
    if types and any(t != "card" for t in types):
        raise invalid(
            "The emulator supports the card payment method type only.",
            param="payment_settings[payment_method_types]",
        )
    out["payment_method_types"] = types or None
    out["save_default_payment_method"] = (
        p.string("save_default_payment_method", choices={"off", "on_subscription"}) or "off"
    )
    out["payment_method_options"] = p.raw("payment_method_options") or None
    p.done()
    return out


def read_default_pm(ctx: Ctx, p: Params, cus: Obj) -> tuple[str | None, str | None]:
    pm = p.string("default_payment_method")
    if pm:
        check_default_payment_method(ctx, cus, pm, "default_payment_method")
    src = p.string("default_source")
    if src:
        found = ctx.find(src, "payment_method")
        if found is None or found.get("customer") != cus["id"]:
            raise invalid(
                f"No such source: '{src}'", param="default_source", code="resource_missing"
            )
    return pm, src


def read_automatic_tax(p: Params | None, cus: Obj) -> bool:
    if p is None:
        return False
    enabled = bool(p.boolean("enabled", required=True))
    p.raw("liability")
    p.done()
    if enabled and not ((cus.get("address") or {}).get("country")):
        raise invalid(
            "The customer's location isn't recognized. Set a valid address (at least a "
            "country) on the customer to use automatic tax.",
            param="automatic_tax[enabled]",
            code="customer_tax_location_invalid",
        )
    return enabled


def read_billing_mode(p: Params | None) -> Obj:
    mode: Obj = {
        "flexible": {"proration_discounts": "included"},
        "type": "flexible",
        "updated_at": None,
    }
    if p is None:
        return mode
    kind = p.string("type", required=True, choices={"classic", "flexible"})
    flexible = p.sub("flexible")
    if flexible is not None:
        mode["flexible"]["proration_discounts"] = (
            flexible.string("proration_discounts", choices={"included", "itemized"}) or "included"
        )
        flexible.done()
    p.done()
    if kind == "classic":
        mode = {"flexible": None, "type": "classic", "updated_at": None}
    return mode
