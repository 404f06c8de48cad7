"""The platform's own account (`GET /v1/account`). Connect accounts live in `connect`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..params import Params
from ..router import route
from ..state import Ctx
from ..store import Obj

if TYPE_CHECKING:
    from ..state import Emulator


def account_object(
    acct_id: str, created: int, country: str, currency: str, type_: str = "standard", **kw: Any
) -> Obj:
    return {
        "id": acct_id,
        "object": "account",
        "business_profile": {
            "annual_revenue": None, "estimated_worker_count": None, "mcc": None,
            "minority_owned_business_designation": None, "monthly_estimated_revenue": {},
            "name": kw.get("business_name"), "product_description": None,
            "support_address": None, "support_email": None, "support_phone": None,
            "support_url": None, "url": None,
        },
        "business_type": kw.get("business_type"),
        "capabilities": kw.get("capabilities", {}),
        "charges_enabled": kw.get("charges_enabled", True),
        "controller": (
            {"type": "application", "is_controller": True} if type_ != "standard" else None
        ),
        "country": country,
        "created": created,
        "default_currency": currency,
        "details_submitted": kw.get("details_submitted", True),
        "email": kw.get("email"),
        "external_accounts": {
            "object": "list", "data": [], "has_more": False,
            "url": f"/v1/accounts/{acct_id}/external_accounts",
        },
        "future_requirements": _requirements(),
        "metadata": kw.get("metadata", {}),
        "payouts_enabled": kw.get("payouts_enabled", True),
        "requirements": _requirements(),
        "settings": {
            "bacs_debit_payments": {"display_name": None, "service_user_number": None},
            "branding": {"icon": None, "logo": None, "primary_color": None,
                         "secondary_color": None},
            "card_issuing": {"tos_acceptance": {"date": None, "ip": None}},
            "card_payments": {
                "decline_on": {"avs_failure": False, "cvc_failure": False},
                "statement_descriptor_prefix": None, "statement_descriptor_prefix_kana": None,
                "statement_descriptor_prefix_kanji": None,
            },
            "dashboard": {"display_name": kw.get("business_name"), "timezone": "Etc/UTC"},
            "invoices": {"default_account_tax_ids": None, "hosted_payment_method_save": None},
            "payments": {
                "statement_descriptor": None, "statement_descriptor_kana": None,
                "statement_descriptor_kanji": None, "statement_descriptor_prefix_kana": None,
                "statement_descriptor_prefix_kanji": None,
            },
            "payouts": {
                "debit_negative_balances": True,
                "schedule": kw.get("schedule", {"delay_days": 2, "interval": "daily"}),
                "statement_descriptor": None,
            },
            "sepa_debit_payments": {},
        },
        "tos_acceptance": {"date": None, "ip": None, "user_agent": None},
        "type": type_,
    }  # fmt: skip


def _requirements() -> dict[str, Any]:
    return {
        "alternatives": [], "current_deadline": None, "currently_due": [],
        "disabled_reason": None, "errors": [], "eventually_due": [], "past_due": [],
        "pending_verification": [],
    }  # fmt: skip


def platform_account(em: Emulator) -> Obj:
    cfg = em.config
    # Called when the emulator starts and after every reset: (re)start automatic payouts.
    from .payouts import start_schedule

    start_schedule(em)
    return account_object(
        cfg.platform_account, em.now(), cfg.country, cfg.default_currency,
        business_name="payplane (emulated platform)",
        schedule={"delay_days": cfg.settlement_delay_days, "interval": cfg.payout_schedule},
    )  # fmt: skip


@route("GET", "/v1/account", perm="accounts")
def retrieve_self(ctx: Ctx, p: Params) -> Obj:
    p.done()
    acct = ctx.store.get(ctx.account, kind="account")
    assert acct is not None  # the pipeline only admits existing accounts
    return acct
