"""Account links and the emulator's stand-in for Stripe's hosted onboarding form."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from stripe_emulator.testing import EmulatorHandle, assert_fixture_keys
from stripe_emulator.tests.connect_helpers import CAPS, caps, custom_account, events, reqs
from stripe_emulator.tests.money_helpers import BANK

DELAY = 60
RETURN = "https://seller.example.com/done"
REFRESH = "https://seller.example.com/again"


def _link(client: stripe.StripeClient, acct: str, type_: str = "account_onboarding",
          **extra: Any) -> stripe.AccountLink:  # fmt: skip
    return client.v1.account_links.create(
        params={"account": acct, "type": type_, "refresh_url": REFRESH, "return_url": RETURN,
                **extra}
    )  # fmt: skip


def _complete(emu: EmulatorHandle, url: str, **body: Any) -> dict[str, Any]:
    result: dict[str, Any] = emu.control.call(
        "POST", "/_emulator/account_links/complete", {"url": url, **body}
    )
    return result


def test_express_hosted_onboarding(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    acct = client.v1.accounts.create(params={"type": "express", "capabilities": CAPS})
    assert not acct.details_submitted and caps(acct)["transfers"] == "inactive"
    link = _link(client, acct.id)
    assert_fixture_keys(link, "account_link")
    assert link.url.startswith(f"https://connect.stripe.com/setup/e/{acct.id}/")
    assert link.expires_at == link.created + 300

    done = _complete(emu, link.url)
    assert done == {"completed": True, "redirect": RETURN, "account": acct.id}
    acct = client.v1.accounts.retrieve(acct.id)
    assert acct.details_submitted and acct.business_type == "individual"
    assert acct.tos_acceptance.date is not None and acct.external_accounts.data
    assert reqs(acct)["currently_due"] == [] and caps(acct)["transfers"] == "pending"
    emu.control.advance(seconds=DELAY + 1)  # date of birth 1901-01-01 verifies on the clock
    acct = client.v1.accounts.retrieve(acct.id)
    assert acct.charges_enabled and acct.payouts_enabled
    assert "account.external_account.created" in [e.type for e in events(client, acct.id)]

    again = _complete(emu, link.url)  # single use
    assert again == {"completed": False, "redirect": REFRESH, "account": acct.id}


def test_expired_link_redirects_to_refresh_url(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    acct = client.v1.accounts.create(params={"type": "express", "capabilities": CAPS})
    link = _link(client, acct.id)
    emu.control.advance(seconds=301)
    assert _complete(emu, link.url)["redirect"] == REFRESH
    assert not client.v1.accounts.retrieve(acct.id).details_submitted


@pytest.mark.parametrize(
    ("verification", "charges"),
    [("immediate", True), ("failure", False), ("listed", False)],
)
def test_hosted_onboarding_outcomes(
    emu: EmulatorHandle, client: stripe.StripeClient, verification: str, charges: bool
) -> None:
    acct = client.v1.accounts.create(params={"type": "express", "capabilities": CAPS})
    _complete(emu, _link(client, acct.id).url, verification=verification)
    emu.control.advance(seconds=DELAY + 1)
    acct = client.v1.accounts.retrieve(acct.id)
    assert acct.charges_enabled is charges
    if verification == "failure":
        assert reqs(acct)["currently_due"] == ["individual.verification.document"]
    if verification == "listed":
        assert reqs(acct)["disabled_reason"] == "listed"


def test_company_onboarding_and_eventually_due(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    acct = client.v1.accounts.create(params={"type": "express", "capabilities": CAPS})
    link = _link(client, acct.id, collection_options={"fields": "eventually_due"})
    _complete(emu, link.url, business_type="company", verification="immediate")
    acct = client.v1.accounts.retrieve(acct.id)
    (rep,) = client.v1.accounts.persons.list(acct.id).data
    assert rep.relationship.representative and rep.id_number_provided
    assert acct.company.tax_id_provided and acct.charges_enabled and acct.payouts_enabled
    assert reqs(acct)["eventually_due"] == []


def test_standard_account_onboarding(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    acct = client.v1.accounts.create(params={"type": "standard"})
    with pytest.raises(stripe.InvalidRequestError) as err:
        _link(client, acct.id, "account_update")
    assert err.value.param == "type"
    link = _link(client, acct.id)
    assert "/setup/s/" in link.url
    _complete(emu, link.url)
    acct = client.v1.accounts.retrieve(acct.id)
    assert acct.details_submitted and acct.charges_enabled and acct.payouts_enabled
    assert caps(acct) == {"card_payments": "active", "transfers": "active"}


def test_account_update_link_fixes_what_failed(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    acct = custom_account(client, business_type="individual", external_account=BANK)
    link = _link(client, acct.id, "account_update")
    assert "/setup/c/" in link.url
    _complete(emu, link.url, verification="failure")
    emu.control.advance(seconds=DELAY + 1)
    assert reqs(client.v1.accounts.retrieve(acct.id))["currently_due"] == [
        "individual.verification.document"
    ]
    _complete(emu, _link(client, acct.id, "account_update").url)  # uploads a document
    emu.control.advance(seconds=DELAY + 1)
    acct = client.v1.accounts.retrieve(acct.id)
    assert reqs(acct)["currently_due"] == [] and acct.charges_enabled


def test_account_link_errors(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    acct = custom_account(client)
    cases: list[tuple[dict[str, object], str]] = [
        ({"type": "account_onboarding"}, "account"),
        ({"account": acct.id}, "type"),
        ({"account": acct.id, "type": "account_signup"}, "type"),
        ({"account": "acct_nobody", "type": "account_onboarding"}, "account"),
        ({"account": acct.id, "type": "account_onboarding", "collect": "everything"}, "collect"),
    ]
    for params, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.account_links.create(params=params)
        assert err.value.param == param, params
    with pytest.raises(RuntimeError, match="400"):
        _complete(emu, "https://connect.stripe.com/setup/c/acct_x/nothing")
    with pytest.raises(RuntimeError, match="400"):
        _complete(emu, _link(client, acct.id).url, verification="maybe")
