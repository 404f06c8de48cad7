"""Connect onboarding with Stripe's test values: requirements, verification on the clock,
capabilities, rejection and deadlines (docs.stripe.com/connect/testing)."""

from __future__ import annotations

from pathlib import Path

import pytest
import stripe

from stripe_emulator.config import Config
from stripe_emulator.testing import EmulatorHandle, assert_fixture_keys, running_emulator
from stripe_emulator.tests.connect_helpers import (
    ADDRESS,
    PROFILE,
    TOS,
    caps,
    custom_account,
    events,
    individual_account,
    person,
    previous,
    reqs,
)
from stripe_emulator.tests.money_helpers import BANK

INDIVIDUAL_DUE = sorted(
    ["business_profile.mcc", "business_profile.url", "external_account", "tos_acceptance.date",
     "tos_acceptance.ip"]
    + [f"individual.{f}" for f in (
        "address.city", "address.line1", "address.postal_code", "address.state", "dob.day",
        "dob.month", "dob.year", "email", "first_name", "last_name", "phone", "ssn_last_4")]
)  # fmt: skip
IDENTITY = sorted(
    f"individual.{f}"
    for f in ("dob.day", "dob.month", "dob.year", "first_name", "last_name", "ssn_last_4")
)
DELAY = 60  # Config.connect_verification_delay_s


def test_individual_onboarding_through_every_state(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    acct = custom_account(client)
    assert_fixture_keys(
        acct, "account",
        nested=("business_profile", "future_requirements", "requirements", "settings",
                "tos_acceptance"),
    )  # fmt: skip
    due = reqs(acct)
    assert due["disabled_reason"] == "requirements.past_due"
    assert "business_type" in due["currently_due"] and due["past_due"] == due["currently_due"]
    (alternative,) = due["alternatives"]
    assert alternative == {"alternative_fields_due": ["business_profile.product_description"],
                           "original_fields_due": ["business_profile.url"]}  # fmt: skip
    assert caps(acct) == {"card_payments": "inactive", "transfers": "inactive"}
    assert not (acct.charges_enabled or acct.payouts_enabled or acct.details_submitted)
    assert events(client, acct.id) == []  # a new account is no update

    acct = client.v1.accounts.update(acct.id, params={"business_type": "individual"})
    assert reqs(acct)["currently_due"] == INDIVIDUAL_DUE == reqs(acct)["past_due"]
    assert "individual.id_number" in reqs(acct)["eventually_due"]

    # Identity in: it goes under review; the rest is still past due.
    acct = client.v1.accounts.update(acct.id, params={"individual": person()})
    assert reqs(acct)["pending_verification"] == IDENTITY
    assert not set(IDENTITY) & set(reqs(acct)["currently_due"])
    assert acct.individual.verification.status == "pending"
    assert_fixture_keys(acct.individual, "person", nested=("dob", "relationship", "verification"))
    assert acct.individual.ssn_last_4_provided and "ssn_last_4" not in acct.individual

    acct = client.v1.accounts.update(
        acct.id,
        params={"business_profile": {"mcc": "5734", "product_description": "Used books"},
                "tos_acceptance": TOS},
    )  # fmt: skip
    assert reqs(acct)["currently_due"] == ["external_account"]
    assert reqs(acct)["disabled_reason"] == "requirements.past_due"
    assert caps(acct) == {"card_payments": "pending", "transfers": "pending"}

    acct = client.v1.accounts.update(acct.id, params={"external_account": BANK})
    assert reqs(acct)["currently_due"] == [] and acct.details_submitted
    assert reqs(acct)["disabled_reason"] == "requirements.pending_verification"
    assert not acct.charges_enabled and not acct.payouts_enabled

    emu.control.advance(seconds=DELAY - 5)
    assert client.v1.accounts.retrieve(acct.id).requirements.pending_verification == IDENTITY
    emu.control.advance(seconds=10)
    acct = client.v1.accounts.retrieve(acct.id)
    assert reqs(acct)["pending_verification"] == [] and reqs(acct)["disabled_reason"] is None
    assert caps(acct) == {"card_payments": "active", "transfers": "active"}
    assert acct.charges_enabled and acct.payouts_enabled
    assert acct.individual.verification.status == "verified"
    assert reqs(acct)["eventually_due"] == ["individual.id_number"]

    log = events(client, acct.id)
    assert all(e.account == acct.id for e in log)
    cap_events = [e for e in log if e.type == "capability.updated"]
    moves = [(e.data.object.id, e.data.object.status, previous(e)["status"]) for e in cap_events]
    assert moves == [
        ("card_payments", "pending", "inactive"), ("transfers", "pending", "inactive"),
        ("card_payments", "active", "pending"), ("transfers", "active", "pending"),
    ]  # fmt: skip
    assert_fixture_keys(cap_events[-1].data.object, "capability")
    last = [e for e in log if e.type == "account.updated"][-1]
    assert previous(last)["charges_enabled"] is False and previous(last)["payouts_enabled"] is False
    assert previous(last)["requirements"]["pending_verification"] == IDENTITY
    assert last.request.id is None  # the clock did it, not a request


def test_immediate_test_values_verify_in_the_response(client: stripe.StripeClient) -> None:
    by_dob = individual_account(client, dob=(1902, 1, 1))
    assert caps(by_dob) == {"card_payments": "active", "transfers": "active"}
    assert by_dob.charges_enabled and by_dob.payouts_enabled
    assert reqs(by_dob)["pending_verification"] == []
    by_id = individual_account(client, id_number="222222222")
    assert caps(by_id)["card_payments"] == "active" and by_id.individual.id_number_provided
    assert reqs(by_id)["eventually_due"] == []


def test_unverifiable_date_of_birth_asks_for_a_document(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    acct = individual_account(client, dob=(1980, 6, 15))
    assert reqs(acct)["pending_verification"] == IDENTITY  # failure arrives later, like Stripe
    emu.control.advance(seconds=DELAY + 1)
    acct = client.v1.accounts.retrieve(acct.id)
    doc = "individual.verification.document"
    assert reqs(acct)["currently_due"] == [doc] == reqs(acct)["past_due"]
    (error,) = reqs(acct)["errors"]
    assert (error["code"], error["requirement"]) == ("verification_failed_keyed_identity", doc)
    assert caps(acct)["card_payments"] == "inactive" and not acct.charges_enabled
    assert acct.individual.verification.status == "unverified"
    assert acct.individual.requirements.currently_due == ["verification.document"]

    failing = {"verification": {"document": {"front": "file_identity_document_failure"}}}
    acct = client.v1.accounts.update(acct.id, params={"individual": failing})
    assert doc in reqs(acct)["pending_verification"]
    emu.control.advance(seconds=DELAY + 1)
    (error,) = reqs(client.v1.accounts.retrieve(acct.id))["errors"]
    assert error["code"] == "verification_document_failed_other"

    passing = {"verification": {"document": {"front": "file_identity_document_success"}}}
    client.v1.accounts.update(acct.id, params={"individual": passing})
    emu.control.advance(seconds=DELAY + 1)
    acct = client.v1.accounts.retrieve(acct.id)
    assert reqs(acct)["currently_due"] == [] and reqs(acct)["errors"] == []
    assert acct.charges_enabled and acct.payouts_enabled


def test_failing_id_number_is_due_again(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    acct = individual_account(client, id_number="111111111")
    emu.control.advance(seconds=DELAY + 1)
    acct = client.v1.accounts.retrieve(acct.id)
    (error,) = reqs(acct)["errors"]
    assert (error["code"], error["requirement"]) == (
        "verification_failed_id_number_match", "individual.id_number",
    )  # fmt: skip
    assert reqs(acct)["past_due"] == ["individual.id_number"] and not acct.charges_enabled
    acct = client.v1.accounts.update(acct.id, params={"individual": {"id_number": "000000000"}})
    assert "individual.id_number" in reqs(acct)["pending_verification"]
    emu.control.advance(seconds=DELAY + 1)
    acct = client.v1.accounts.retrieve(acct.id)
    assert reqs(acct)["errors"] == [] and acct.charges_enabled


def test_address_tokens(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    charges_only = individual_account(client, line1="address_no_match")
    neither = individual_account(client, line1="address_line1_no_match")
    emu.control.advance(seconds=DELAY + 1)
    charges_only = client.v1.accounts.retrieve(charges_only.id)
    assert reqs(charges_only)["past_due"] == ["individual.address.line1"]
    assert charges_only.charges_enabled and not charges_only.payouts_enabled
    assert reqs(charges_only)["errors"][0]["code"] == "verification_failed_address_match"
    neither = client.v1.accounts.retrieve(neither.id)
    assert reqs(neither)["past_due"] == [
        "individual.address.city", "individual.address.line1", "individual.address.postal_code",
        "individual.address.state",
    ]  # fmt: skip
    assert not neither.charges_enabled and not neither.payouts_enabled
    fixed = {"address": {"line1": "address_full_match", **ADDRESS}}
    client.v1.accounts.update(charges_only.id, params={"individual": fixed})
    emu.control.advance(seconds=DELAY + 1)
    assert client.v1.accounts.retrieve(charges_only.id).payouts_enabled


def test_ofac_alert_is_reviewed(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    approved = individual_account(client, dob=(1900, 1, 1))
    rejected = individual_account(client, dob=(1900, 1, 1))
    emu.control.advance(seconds=DELAY + 1)
    for acct_id in (approved.id, rejected.id):
        acct = client.v1.accounts.retrieve(acct_id)
        assert reqs(acct)["disabled_reason"] == "listed"
        assert caps(acct) == {"card_payments": "inactive", "transfers": "inactive"}
    emu.control.call("POST", f"/_emulator/accounts/{approved.id}/review", {"outcome": "approve"})
    emu.control.call("POST", f"/_emulator/accounts/{rejected.id}/review", {"outcome": "reject"})
    assert client.v1.accounts.retrieve(approved.id).charges_enabled
    gone = client.v1.accounts.retrieve(rejected.id)
    assert reqs(gone)["disabled_reason"] == "rejected.listed" and not gone.charges_enabled
    cap = client.v1.accounts.capabilities.retrieve(rejected.id, "transfers")
    assert cap.status == "inactive" and cap.requirements.disabled_reason == "rejected.other"


def test_platform_rejects_an_account(client: stripe.StripeClient) -> None:
    acct = individual_account(client, dob=(1902, 1, 1))
    assert acct.charges_enabled
    rejected = client.v1.accounts.reject(acct.id, params={"reason": "fraud"})
    assert reqs(rejected)["disabled_reason"] == "rejected.fraud"
    assert not rejected.charges_enabled and not rejected.payouts_enabled
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.accounts.reject(acct.id, params={"reason": "boredom"})
    assert err.value.param == "reason"
    standard = client.v1.accounts.create(params={"type": "standard"})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.accounts.reject(standard.id, params={"reason": "other"})


def test_deadline_passing_disables_the_account(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    acct = individual_account(client)
    emu.control.advance(seconds=DELAY + 1)
    start = emu.control.now()
    triggered = emu.control.call(
        "POST", f"/_emulator/accounts/{acct.id}/requirements/trigger", {"deadline_days": 3}
    )
    due = triggered["requirements"]
    assert due["currently_due"] == ["individual.id_number"] and due["past_due"] == []
    assert start + 3 * 86_400 - 2 <= due["current_deadline"] <= start + 3 * 86_400 + 2
    assert triggered["charges_enabled"] and due["disabled_reason"] is None

    emu.control.advance(days=2)
    assert client.v1.accounts.retrieve(acct.id).charges_enabled
    emu.control.advance(days=2)
    acct = client.v1.accounts.retrieve(acct.id)
    assert reqs(acct)["past_due"] == ["individual.id_number"]
    assert reqs(acct)["disabled_reason"] == "requirements.past_due"
    assert reqs(acct)["current_deadline"] is None
    assert not acct.charges_enabled and not acct.payouts_enabled
    assert [e.data.object.status for e in events(client, acct.id, "capability.")][-2:] == [
        "inactive", "inactive",
    ]  # fmt: skip

    acct = client.v1.accounts.update(acct.id, params={"individual": {"id_number": "000000000"}})
    assert acct.charges_enabled  # a verified person re-verifying does not block the account
    assert "individual.id_number" in reqs(acct)["pending_verification"]
    assert reqs(acct)["past_due"] == [] and reqs(acct)["currently_due"] == []
    emu.control.advance(seconds=DELAY + 1)
    acct = client.v1.accounts.retrieve(acct.id)
    assert reqs(acct)["pending_verification"] == [] and reqs(acct)["eventually_due"] == []


def test_company_with_representative_and_tax_ids(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    company = {"name": "Used Books Inc.", "phone": "0000000000", "owners_provided": True,
               "address": {"line1": "address_full_match", **ADDRESS}}  # fmt: skip
    results = {}
    for tax_id in ("000000000", "111111111", "111111112", "222222222"):
        acct = custom_account(
            client, business_type="company", business_profile=PROFILE, tos_acceptance=TOS,
            external_account=BANK, company={**company, "tax_id": tax_id},
        )  # fmt: skip
        assert "representative.first_name" in reqs(acct)["currently_due"]
        assert acct.company.tax_id_provided and "tax_id" not in acct.company
        rep = client.v1.accounts.persons.create(
            acct.id,
            params={**person(dob=(1902, 1, 1)), "relationship": {"representative": True,
                                                                 "executive": True,
                                                                 "title": "CEO"}},
        )  # fmt: skip
        assert_fixture_keys(rep, "person")
        assert rep.verification.status == "verified" and rep.ssn_last_4_provided
        created, verified = events(client, acct.id, "person.")
        assert (created.type, created.data.object.verification.status) == (
            "person.created", "unverified",
        )  # fmt: skip
        assert previous(verified)["verification"] == {"status": "unverified"}
        results[tax_id] = client.v1.accounts.retrieve(acct.id)
    assert results["222222222"].charges_enabled  # immediate tax id, immediate person
    emu.control.advance(seconds=DELAY + 1)
    settled = {t: client.v1.accounts.retrieve(a.id) for t, a in results.items()}
    assert settled["000000000"].charges_enabled and settled["000000000"].payouts_enabled
    for tax_id, code in (("111111111", "verification_failed_tax_id_match"),
                         ("111111112", "verification_failed_tax_id_not_issued")):  # fmt: skip
        acct = settled[tax_id]
        assert reqs(acct)["errors"] == [
            {"code": code, "reason": reqs(acct)["errors"][0]["reason"],
             "requirement": "company.tax_id"}
        ]  # fmt: skip
        assert not acct.charges_enabled
    # The representative's own fields are named after the person once it exists.
    acct = settled["000000000"]
    (rep,) = client.v1.accounts.persons.list(acct.id).data
    assert f"{rep.id}.id_number" in reqs(acct)["eventually_due"]
    assert (
        client.v1.accounts.persons.list(acct.id, params={"relationship": {"owner": True}}).data
        == []
    )


def test_persons_api(client: stripe.StripeClient) -> None:
    acct = custom_account(client, business_type="company")
    persons = client.v1.accounts.persons
    owner = persons.create(
        acct.id,
        params={"first_name": "Ada", "relationship": {"owner": True, "percent_ownership": "60"}},
    )
    assert owner.relationship.owner and owner.relationship.percent_ownership == 60
    updated = persons.update(acct.id, owner.id, params={"last_name": "Lovelace"})
    assert updated.last_name == "Lovelace" and updated.first_name == "Ada"
    assert persons.retrieve(acct.id, owner.id).last_name == "Lovelace"
    types = [e.type for e in events(client, acct.id, "person.")]
    assert types == ["person.created", "person.updated"]
    with pytest.raises(stripe.InvalidRequestError) as err:
        persons.update(acct.id, owner.id, params={"ssn_last_4": "12"})
    assert err.value.param == "ssn_last_4"
    assert persons.delete(acct.id, owner.id).deleted
    with pytest.raises(stripe.InvalidRequestError) as err:
        persons.retrieve(acct.id, owner.id)
    assert err.value.http_status == 404
    individual = individual_account(client)
    with pytest.raises(stripe.InvalidRequestError):
        persons.create(individual.id, params={"first_name": "X"})


@pytest.mark.parametrize(
    ("url", "code"),
    [("https://disallowed.stripe.com", "invalid_url_denylisted"),
     ("https://geoblocked.stripe.com", "invalid_url_website_inaccessible_geoblocked"),
     ("https://underconstruction.stripe.com",
      "invalid_url_website_incomplete_under_construction")],
)  # fmt: skip
def test_business_url_tokens(
    emu: EmulatorHandle, client: stripe.StripeClient, url: str, code: str
) -> None:
    acct = individual_account(client, dob=(1902, 1, 1))
    acct = client.v1.accounts.update(acct.id, params={"business_profile": {"url": url}})
    assert acct.charges_enabled  # the review runs in the background
    emu.control.advance(seconds=DELAY + 1)
    acct = client.v1.accounts.retrieve(acct.id)
    assert reqs(acct)["errors"][0]["code"] == code
    assert reqs(acct)["past_due"] == ["business_profile.url"] and not acct.charges_enabled


def test_validation_leaves_no_trace(client: stripe.StripeClient) -> None:
    acct = individual_account(client, dob=(1902, 1, 1))
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.accounts.update(
            acct.id, params={"individual": {"id_number": "111111111"}, "nickname": "x"}
        )
    assert err.value.param == "nickname"
    again = client.v1.accounts.retrieve(acct.id)
    assert not again.individual.id_number_provided and again.charges_enabled
    cases: list[tuple[dict[str, object], str]] = [
        ({"individual": {"dob": {"day": 1, "month": 13, "year": 1901}}}, "individual[dob][month]"),
        ({"individual": {"ssn_last_4": "00000"}}, "individual[ssn_last_4]"),
        ({"business_profile": {"mcc": "12"}}, "business_profile[mcc]"),
        ({"individual": {"passport": "x"}}, "individual[passport]"),
    ]
    for params, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.accounts.update(acct.id, params=params)
        assert err.value.param == param, params


def test_express_and_standard_cannot_accept_terms_for_the_account(
    client: stripe.StripeClient,
) -> None:
    for type_ in ("express", "standard"):
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.accounts.create(params={"type": type_, "tos_acceptance": TOS})
        assert err.value.param == "tos_acceptance"
    standard = client.v1.accounts.create(params={"type": "standard"})
    assert caps(standard) == {"card_payments": "inactive", "transfers": "inactive"}
    assert reqs(standard)["currently_due"] == [
        "business_profile.product_description", "business_profile.support_phone",
        "business_profile.url", "external_account", "tos_acceptance.date", "tos_acceptance.ip",
    ]  # fmt: skip
    express = client.v1.accounts.create(params={"type": "express"})
    assert reqs(express)["disabled_reason"] == "action_required.requested_capabilities"
    assert client.v1.accounts.capabilities.retrieve(express.id, "transfers").status == (
        "unrequested"
    )


def test_verification_resumes_after_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "emulator.sqlite")
    config = Config(global_rate=None, endpoint_rate=None)
    with running_emulator(config, store_path=db) as emu:
        client = emu.stripe_client()
        acct = individual_account(client)
        deadline = individual_account(client, dob=(1902, 1, 1))
        emu.control.call(
            "POST", f"/_emulator/accounts/{deadline.id}/requirements/trigger", {"deadline_days": 1}
        )
        assert reqs(client.v1.accounts.retrieve(acct.id))["pending_verification"] == IDENTITY
    with running_emulator(Config(global_rate=None, endpoint_rate=None), store_path=db) as emu:
        client = emu.stripe_client()
        emu.control.advance(days=2)
        assert client.v1.accounts.retrieve(acct.id).charges_enabled
        late = client.v1.accounts.retrieve(deadline.id)
        assert reqs(late)["past_due"] == ["individual.id_number"] and not late.charges_enabled


def test_failed_verification_within_a_deadline_waits_for_it(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    acct = individual_account(client, dob=(1902, 1, 1))
    emu.control.call(
        "POST", f"/_emulator/accounts/{acct.id}/requirements/trigger", {"deadline_days": 5}
    )
    client.v1.accounts.update(acct.id, params={"individual": {"id_number": "111111111"}})
    emu.control.advance(days=1)
    acct = client.v1.accounts.retrieve(acct.id)
    assert reqs(acct)["currently_due"] == ["individual.id_number"] and reqs(acct)["past_due"] == []
    assert reqs(acct)["errors"][0]["code"] == "verification_failed_id_number_match"
    assert reqs(acct)["current_deadline"] is not None and acct.charges_enabled
    emu.control.advance(days=5)
    acct = client.v1.accounts.retrieve(acct.id)
    assert reqs(acct)["past_due"] == ["individual.id_number"] and not acct.charges_enabled
