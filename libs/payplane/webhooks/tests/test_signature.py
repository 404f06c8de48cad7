from __future__ import annotations

import time

import pytest
import stripe

from payplane.webhooks import SignatureError, verify_signature
from payplane.webhooks.testing import sign_header

SECRET = "whsec_test_current"
RAW = b'{"id":"evt_1","type":"charge.succeeded"}'


def test_header_made_by_the_stripe_sdk_verifies() -> None:
    header = stripe.WebhookSignature.generate_signature_header(RAW.decode(), SECRET)
    verify_signature(RAW, header, [SECRET])


def test_our_test_signer_agrees_with_the_stripe_sdk() -> None:
    header = sign_header(RAW, SECRET, extra_v1=["00" * 32], v0="ff" * 32)
    assert stripe.WebhookSignature.verify_header(RAW, header, SECRET, tolerance=300)
    verify_signature(RAW, header, [SECRET])


def test_any_v1_against_any_secret_during_a_roll() -> None:
    old, new = "whsec_old", "whsec_new"
    header = sign_header(RAW, old, extra_v1=["ab" * 32])
    verify_signature(RAW, header, [new, old])
    with pytest.raises(SignatureError):
        verify_signature(RAW, header, [new])


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        "t=notanumber,v1=abc",
        "v1=abc",
        "t=1,t=2,v1=abc",
    ],
)
def test_malformed_headers_are_refused(header: str) -> None:
    with pytest.raises(SignatureError):
        verify_signature(RAW, header, [SECRET])


def test_only_v1_counts() -> None:
    t = int(time.time())
    good = sign_header(RAW, SECRET, t).split("v1=")[1]
    with pytest.raises(SignatureError, match="no v1"):
        verify_signature(RAW, f"t={t},v0={good}", [SECRET])


def test_tampered_body_and_non_ascii_signature_are_refused() -> None:
    header = sign_header(RAW, SECRET)
    with pytest.raises(SignatureError):
        verify_signature(RAW + b" ", header, [SECRET])
    with pytest.raises(SignatureError):
        verify_signature(RAW, header + ",v1=\u00e9\u00e9", ["whsec_other"])


def test_timestamp_tolerance() -> None:
    now = 1_700_000_000.0
    header = sign_header(RAW, SECRET, int(now) - 300)
    verify_signature(RAW, header, [SECRET], tolerance_s=300, now=now)
    with pytest.raises(SignatureError, match="older"):
        verify_signature(RAW, header, [SECRET], tolerance_s=300, now=now + 1)
    # A sender clock ahead of ours (Stripe's libraries accept it too).
    verify_signature(RAW, sign_header(RAW, SECRET, int(now) + 60), [SECRET], now=now)


def test_no_secret_configured() -> None:
    with pytest.raises(SignatureError):
        verify_signature(RAW, sign_header(RAW, SECRET), [""])
