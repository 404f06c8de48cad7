"""Balance and balance transactions.

`GET /v1/balance` reports available and pending funds per currency (kept by
`money.post_balance_transaction`, always the sum of balance transaction nets), and
`GET /v1/balance_transactions` lists the movements, filterable by type, source, currency,
created and (for automatic payouts) the payout that swept them.

When pending funds settle, one `balance.available` event per account is emitted per settlement
moment, however many balance transactions became available at that moment.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from .. import money
from ..errors import invalid
from ..params import CURRENCIES, Params
from ..router import control, route
from ..state import Ctx, Emulator, timer
from ..store import Obj
from .common import list_response

if TYPE_CHECKING:
    from ..app import EmulatorApp

__all__ = ["balance_object", "instant_available", "insufficient_funds", "reset_state"]

# Per emulator: settlement moment -> accounts whose funds became available at that moment.
_DIRTY: weakref.WeakKeyDictionary[Emulator, dict[float, set[str]]] = weakref.WeakKeyDictionary()


def reset_state(em: Emulator) -> None:
    """Forget pending `balance.available` batches (the emulator was reset)."""
    _DIRTY[em] = {}


def insufficient_funds(payout: bool = False) -> Exception:
    """Stripe's `balance_insufficient` answer (HTTP 400)."""
    if payout:
        message = (
            "You have insufficient funds in your Stripe account. One likely reason you have "
            "insufficient funds is that your funds are automatically being paid out; try "
            "enabling manual payouts by going to https://dashboard.stripe.com/account/payouts."
        )
    else:
        message = (
            "You have insufficient available funds in your Stripe account. Try adding funds "
            "directly to your available balance by creating Charges using the 4000000000000077 "
            "test card. See: https://stripe.com/docs/testing#available-balance"
        )
    return invalid(message, code="balance_insufficient")


def _currencies(em: Emulator, account: str) -> list[str]:
    acct = em.store.get(account, kind="account")
    default = (acct or {}).get("default_currency") or em.config.default_currency
    found = {cur for (acct_id, cur) in em.balances if acct_id == account}
    return [default, *sorted(found - {default})]


def instant_available(em: Emulator, account: str, currency: str) -> int:
    """What Instant Payouts may take: card funds count as soon as the charge succeeds, so
    pending funds too (every pending balance in the emulator comes from cards)."""
    bal = money.balance_of(em, account, currency)
    return max(bal["available"] + max(bal["pending"], 0), 0)


def _instant_currencies(em: Emulator, account: str) -> set[str]:
    from .external_accounts import all_external_accounts, instant_eligible

    return {e["currency"] for e in all_external_accounts(em, account) if instant_eligible(e)}


def balance_object(em: Emulator, account: str) -> Obj:
    available: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    reserved: list[dict[str, Any]] = []
    for cur in _currencies(em, account):
        bal = money.balance_of(em, account, cur)
        available.append(
            {
                "amount": bal["available"],
                "currency": cur,
                "source_types": {"card": bal["available"]},
            }
        )
        pending.append(
            {"amount": bal["pending"], "currency": cur, "source_types": {"card": bal["pending"]}}
        )
        reserved.append({"amount": 0, "currency": cur})
    out: Obj = {
        "object": "balance",
        "available": available,
        "connect_reserved": reserved,
        "livemode": False,
        "pending": pending,
    }
    instant = sorted(_instant_currencies(em, account))
    if instant:  # Stripe shows it only to accounts that can make Instant Payouts
        out["instant_available"] = [
            {"amount": amt, "currency": cur, "source_types": {"card": amt}}
            for cur in instant
            for amt in (instant_available(em, account, cur),)
        ]
    return out


@route("GET", "/v1/balance", perm="balance")
def retrieve_balance(ctx: Ctx, p: Params) -> Obj:
    p.done()
    return balance_object(ctx.em, ctx.account)


@route("GET", "/v1/balance_transactions/{id}", perm="balance")
def retrieve(ctx: Ctx, p: Params, id: str) -> Obj:
    p.done()
    return ctx.get(id, "balance_transaction")


@route("GET", "/v1/balance_transactions", perm="balance")
def list_(ctx: Ctx, p: Params) -> Obj:
    payout = p.string("payout")
    source = p.string("source")
    type_ = p.string("type")
    currency = p.currency("currency")
    if payout is not None:
        ctx.get(payout, "payout", param="payout")  # Stripe answers 404 for an unknown payout
    where: tuple[str, str] | None = None
    checks: list[tuple[str, str]] = []
    for field, value in (("payout", payout), ("source", source), ("type", type_)):
        if value is None:
            continue
        if where is None:
            where = (field, value)
        elif field != "payout":
            checks.append((field, value))
    if currency is not None:
        checks.append(("currency", currency))

    def predicate(o: Obj) -> bool:
        return all(o.get(f) == v for f, v in checks)

    return list_response(
        ctx,
        p,
        "balance_transaction",
        "/v1/balance_transactions",
        where=where,
        predicate=predicate if checks else None,
    )


# -- balance.available: one event per account per settlement moment ---------------------------
def _on_settle(em: Emulator, account: str, bt: Obj) -> None:
    batches = _DIRTY.setdefault(em, {})
    at = float(bt["available_on"])
    accounts = batches.get(at)
    if accounts is None:
        batches[at] = accounts = set()
        # Same moment, scheduled after every settlement already queued for it: runs last.
        em.schedule(at, "balance.available", at)
    accounts.add(account)
    from .payouts import ensure_schedule

    ensure_schedule(em)


money.SETTLE_HOOKS.append(_on_settle)


@timer("balance.available")
def _emit_available(em: Emulator, at: float) -> None:
    accounts = _DIRTY.setdefault(em, {}).pop(at, set())
    for account in sorted(accounts):
        if em.store.get(account, kind="account") is None:
            continue  # deleted connected account
        em.emit(account, "balance.available", balance_object(em, account))


# -- emulator-only: put funds on a balance without a charge -----------------------------------
@control("POST", "/_emulator/balance/top_up")
def top_up(app: EmulatorApp, body: dict[str, Any]) -> Obj:
    """Add funds to an account's balance (emulator only; Stripe has no such call).

    JSON body: {"amount": int (minor units, may be negative), "currency": "usd",
    "account": "acct_..." (default: the platform), "available": bool (default true)}.
    Posts a balance transaction of type `adjustment`, reporting category
    `other_adjustment`; with "available": false the funds stay pending until the usual
    settlement date (`config.settlement_delay_days` midnights later; a connected account's
    `delay_days`). Answers the balance
    transaction.
    """
    em = app.em
    amount = body.get("amount")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount == 0:
        raise ValueError("amount must be a non-zero integer (minor units)")
    currency = str(body.get("currency", em.config.default_currency)).lower()
    if currency not in CURRENCIES:
        raise ValueError(f"unsupported currency {currency!r}")
    account = body.get("account") or em.config.platform_account
    if not isinstance(account, str) or em.store.get(account, kind="account") is None:
        raise ValueError(f"no such account {account!r}")
    available = body.get("available", True)
    if not isinstance(available, bool):
        raise ValueError("available must be a boolean")
    from .payouts import ensure_schedule

    ensure_schedule(em)
    ctx = em.ctx(account)
    return money.post_balance_transaction(
        ctx,
        amount=amount,
        currency=currency,
        type="adjustment",
        reporting_category="other_adjustment",
        source=None,
        description="Emulator top-up",
        available_on=None if available else money.charge_available_on(em, account=account),
    )
