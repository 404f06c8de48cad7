"""Collecting an invoice: payment attempts, their outcome, retries (dunning), due dates.

Payments go through the same PaymentIntent engine as one-off payments (charges, balance
transactions, fees); the invoice learns their outcome from the PaymentIntent's events
(`after_event`), whoever confirmed it. Each failed automatic attempt schedules the next
retry at the configured offsets (`billing.retry_days`, days after the first failure);
`attempt_count` counts the first attempt of any kind, then automatic ones only. After a
hard decline (advice `do_not_try_again`, or Radar's block) a retry is counted but only
charged once another payment method is there to try; after the last one,
`billing.end_action` applies to the subscription if this is its latest invoice, and
`billing.end_invoice_action` to the invoice. A send_invoice invoice becomes overdue at its
due date and meets the end action `billing.send_invoice_grace_days` later.
"""

from __future__ import annotations

from typing import Any

from ..errors import CardError, invalid
from ..state import Ctx, Emulator, after_event
from ..store import Obj
from . import timeline
from .calendar import DAY
from .invoicing import (
    INVOICE,
    PAYMENT,
    emit,
    finalize,
    mark_uncollectible,
    payment_intent_of,
    void,
)

__all__ = ["after_finalize", "attempt_payment", "paid", "payer", "payer_for"]


_PI_EVENTS = frozenset(
    {
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.requires_action",
    }
)


def payer(ctx: Ctx, inv: Obj) -> str | None:
    """What an automatic attempt charges: the invoice's, the subscription's, then the
    customer's default payment method or source (Stripe's precedence)."""
    if inv["default_payment_method"] or inv["default_source"]:
        return str(inv["default_payment_method"] or inv["default_source"])
    sub = ctx.find(inv.get("_sub"), "subscription") if inv.get("_sub") else None
    return payer_for(ctx, inv["customer"], sub)


def payer_for(ctx: Ctx, customer_id: str, sub: Obj | None) -> str | None:
    if sub is not None and (sub["default_payment_method"] or sub["default_source"]):
        return str(sub["default_payment_method"] or sub["default_source"])
    cus = ctx.find(customer_id, "customer")
    if cus is None:
        return None
    found = cus["invoice_settings"]["default_payment_method"] or cus["default_source"]
    return str(found) if found else None


def attempt_payment(
    ctx: Ctx,
    inv: Obj,
    *,
    automatic: bool,
    pm_id: str | None = None,
    off_session: bool = False,
    raise_errors: bool = False,
    reload: bool = True,
) -> Obj:
    """Try to pay an open invoice; the outcome arrives through the PaymentIntent's events.
    Returns the invoice as it ends up (`reload`; else as given). A decline raises CardError
    with `raise_errors`."""
    from ..resources import payment_intents
    from ..resources import payment_methods as pms

    pm_id = pm_id or payer(ctx, inv)
    if pm_id is None:
        if raise_errors:
            raise invalid(
                "This customer has no attached payment source or default payment method. "
                "Please consider adding a default payment method."
            )
        _failed(ctx, inv, None, automatic=automatic, hard=False, pm_id=None)
        return ctx.get(inv["id"], INVOICE) if reload else inv
    pm = pms.resolve(ctx, pm_id, "payment_method")
    pi = payment_intent_of(ctx, inv, inv["customer"])
    if pi["amount"] != inv["amount_remaining"]:
        pi["amount"] = inv["amount_remaining"]
    # What kind of attempt this is, for the PaymentIntent's events to read: handlers run
    # to completion, so the entry lives exactly as long as this call.
    _ATTEMPTS[inv["id"]] = "automatic" if automatic else "manual"
    try:
        payment_intents.confirm_intent(
            ctx, pi, pm, off_session=off_session, billing=automatic and not off_session
        )
    except CardError:
        if raise_errors:
            raise
    finally:
        _ATTEMPTS.pop(inv["id"], None)
    return ctx.get(inv["id"], INVOICE) if reload else inv


_ATTEMPTS: dict[str, str] = {}


@after_event
def _on_payment_intent(em: Emulator, event: Obj) -> None:
    if event["type"] not in _PI_EVENTS:
        return
    pi = event["data"]["object"]
    account = event.get("account") or em.config.platform_account
    pay = em.store.first(account, PAYMENT, "_pi", pi["id"])
    if pay is None:
        return
    inv = em.store.get(pay["invoice"], account, INVOICE)
    if inv is None or inv["status"] not in ("open", "uncollectible"):
        return
    request = event.get("request") or {}
    ctx = Ctx(em, account, request.get("id"), request.get("idempotency_key"))
    ctx = timeline.clock_ctx(ctx, inv)
    if event["type"] == "payment_intent.succeeded":
        pay["status"] = "paid"
        pay["amount_paid"] = pi["amount_received"]
        pay["status_transitions"]["paid_at"] = ctx.now
        ctx.save(pay)
        paid(ctx, inv, pay)
        return
    error = pi.get("last_payment_error") or {}
    if event["type"] == "payment_intent.requires_action":
        _action_required(ctx, inv)
        return
    charge = ctx.find(error.get("charge") or pi.get("latest_charge"), "charge") or {}
    outcome = charge.get("outcome") or {}
    hard = outcome.get("advice_code") == "do_not_try_again" or outcome.get("type") == "blocked"
    _failed(
        ctx,
        inv,
        error,
        automatic=_ATTEMPTS.get(inv["id"]) == "automatic",
        hard=hard,
        pm_id=(error.get("payment_method") or {}).get("id"),
    )


def paid(ctx: Ctx, inv: Obj, pay: Obj | None, *, finalized: bool = False) -> None:
    from . import lifecycle

    now = ctx.now
    counts = not inv["attempted"] or _ATTEMPTS.get(inv["id"]) == "automatic"
    inv["status"] = "paid"
    inv["amount_paid"] = inv["amount_due"]
    inv["amount_remaining"] = 0
    inv["attempted"] = True
    if counts and pay is not None:  # the first attempt, then automatic retries
        inv["attempt_count"] += 1
    inv["next_payment_attempt"] = None
    inv["auto_advance"] = False
    inv["status_transitions"]["paid_at"] = now
    timeline.set_wake(ctx, inv, None)
    ctx.save(inv)
    if finalized:
        emit(ctx, "invoice.finalized", inv)
    emit(ctx, "invoice.paid", inv)
    emit(ctx, "invoice.payment_succeeded", inv)
    if pay is not None:
        ctx.emit("invoice_payment.paid", {k: v for k, v in pay.items() if k[0] != "_"})
    # Only an invoice that failed before can be what made its customer delinquent (another
    # failed invoice still open keeps them so): skip the customer's read otherwise.
    cus = ctx.find(inv["customer"], "customer") if "_first_failure" in inv else None
    if cus is not None and cus["delinquent"] and not _has_unpaid(ctx, cus["id"]):
        cus["delinquent"] = False
        ctx.save(cus)
        ctx.emit("customer.updated", cus, {"delinquent": True})
    lifecycle.on_invoice_paid(ctx, inv)


def _has_unpaid(ctx: Ctx, customer: str) -> bool:
    found, _ = ctx.store.page(
        ctx.account,
        INVOICE,
        limit=1,
        where=("customer", customer),
        predicate=lambda o: o["status"] == "open" and o["attempted"],
    )
    return bool(found)


def _next_attempt(ctx: Ctx, inv: Obj) -> int | None:
    """When the next automatic retry falls, counting from the first failed attempt."""
    if inv["collection_method"] != "charge_automatically" or not inv["auto_advance"]:
        return None
    from . import lifecycle

    if not lifecycle.retries_invoice(ctx, inv):
        return None
    offsets = ctx.config.billing.retry_days
    k = inv["attempt_count"] - 1
    if k >= len(offsets):
        return None
    return int(inv["_first_failure"] + offsets[k] * DAY)


def _count_attempt(ctx: Ctx, inv: Obj, automatic: bool) -> tuple[dict[str, Any], bool]:
    """Count an attempt (the first of any kind, then automatic ones). Returns the previous
    attributes and whether the retries just ran out."""
    before = {
        "attempt_count": inv["attempt_count"],
        "attempted": inv["attempted"],
        "next_payment_attempt": inv["next_payment_attempt"],
    }
    inv["attempted"] = True
    counts = automatic or inv["attempt_count"] == 0
    exhausted = False
    if counts:
        inv["attempt_count"] += 1
        inv.setdefault("_first_failure", ctx.now)
        nxt = _next_attempt(ctx, inv)
        exhausted = nxt is None and _dunned(ctx, inv)
        inv["next_payment_attempt"] = nxt
        timeline.set_wake(ctx, inv, nxt)
    return before, exhausted


def _dunned(ctx: Ctx, inv: Obj) -> bool:
    """Whether this invoice is under automatic retries at all (its end can be reached)."""
    from . import lifecycle

    return (
        inv["collection_method"] == "charge_automatically"
        and inv["auto_advance"]
        and lifecycle.retries_invoice(ctx, inv)
    )


def _failed(
    ctx: Ctx, inv: Obj, error: Obj | None, *, automatic: bool, hard: bool, pm_id: str | None
) -> None:
    from . import lifecycle

    before, exhausted = _count_attempt(ctx, inv, automatic)
    if automatic or error is not None:
        inv["_hard"] = hard
        inv["_failed_pm"] = pm_id
    ctx.save(inv)
    emit(ctx, "invoice.payment_failed", inv)
    if (error or {}).get("code") == "authentication_required":
        emit(ctx, "invoice.payment_action_required", inv)
    emit(ctx, "invoice.updated", inv, before)
    _delinquent(ctx, inv)
    lifecycle.on_invoice_failed(ctx, inv, exhausted)
    if exhausted:
        end_of_retries(ctx, inv)


def _action_required(ctx: Ctx, inv: Obj) -> None:
    from . import lifecycle

    before, exhausted = _count_attempt(ctx, inv, _ATTEMPTS.get(inv["id"]) == "automatic")
    ctx.save(inv)
    emit(ctx, "invoice.payment_action_required", inv)
    emit(ctx, "invoice.updated", inv, before)
    lifecycle.on_invoice_failed(ctx, inv, exhausted)
    if exhausted:
        end_of_retries(ctx, inv)


def _delinquent(ctx: Ctx, inv: Obj) -> None:
    cus = ctx.find(inv["customer"], "customer")
    if cus is not None and not cus["delinquent"]:
        cus["delinquent"] = True
        ctx.save(cus)
        ctx.emit("customer.updated", cus, {"delinquent": False})


def end_of_retries(ctx: Ctx, inv: Obj) -> None:
    from . import lifecycle

    lifecycle.on_retries_exhausted(ctx, inv)
    inv = ctx.get(inv["id"], INVOICE)
    if ctx.config.billing.end_invoice_action == "uncollectible" and inv["status"] == "open":
        mark_uncollectible(ctx, inv)


def _retry(ctx: Ctx, inv: Obj) -> None:
    """A scheduled automatic attempt. After a hard decline, or with nothing to charge, it
    is counted but not charged until another payment method is there to try."""
    pm_id = payer(ctx, inv)
    if pm_id is None or (inv.get("_hard") and pm_id == inv.get("_failed_pm")):
        from . import lifecycle

        before, exhausted = _count_attempt(ctx, inv, automatic=True)
        ctx.save(inv)
        emit(ctx, "invoice.updated", inv, before)
        lifecycle.on_invoice_failed(ctx, inv, exhausted)
        if exhausted:
            end_of_retries(ctx, inv)
        return
    attempt_payment(ctx, inv, automatic=True, pm_id=pm_id, reload=False)


def _wake(ctx: Ctx, inv: Obj) -> None:
    status = inv["status"]
    if status == "draft":
        if inv["auto_advance"] and inv["automatically_finalizes_at"] is not None:
            if inv.get("_paused") == "keep_as_draft":
                return
            inv = finalize(ctx, inv, attempt_later=False)  # the invoice as saved
            if inv["status"] == "open":
                after_finalize(ctx, inv)
        return
    if status != "open":
        return
    if inv["collection_method"] == "charge_automatically":
        if inv["auto_advance"] and inv["next_payment_attempt"] is not None:
            if inv["attempt_count"] == 0:
                attempt_payment(ctx, inv, automatic=True, reload=False)
            else:
                _retry(ctx, inv)
        return
    _send_invoice_due(ctx, inv)


def after_finalize(ctx: Ctx, inv: Obj) -> None:
    """What an automatically finalized invoice does next: its first payment attempt, or
    what a paused collection says."""
    paused = inv.get("_paused")
    if paused == "void":
        void(ctx, inv)
    elif paused == "mark_uncollectible":
        mark_uncollectible(ctx, inv)
    elif inv["collection_method"] == "charge_automatically" and inv["auto_advance"]:
        attempt_payment(ctx, inv, automatic=True, reload=False)


def _send_invoice_due(ctx: Ctx, inv: Obj) -> None:
    """send_invoice: overdue at the due date, the end action a grace period later."""
    from . import lifecycle

    if not inv.get("_overdue"):
        inv["_overdue"] = True
        grace = ctx.config.billing.send_invoice_grace_days
        timeline.set_wake(ctx, inv, int(inv["due_date"]) + grace * DAY)
        ctx.save(inv)
        emit(ctx, "invoice.overdue", inv)
        lifecycle.on_invoice_failed(ctx, inv, False)
        return
    timeline.set_wake(ctx, inv, None)
    ctx.save(inv)
    end_of_retries(ctx, inv)


timeline.WAKERS[INVOICE] = _wake
