"""Card numbers and secrets never leave a service process in its log lines."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from payplane.tracing import RedactingFilter, configure_logging, luhn_valid, redact_secrets

VISA = "4242424242424242"
AMEX = "378282246310005"  # 15 digits
LONG = "6011000990139424"
SECRETS = [
    "sk_test_51Hxyz0123456789abcdefghijkl",
    "sk_live_51Hxyz0123456789abcdefghijkl",
    "rk_test_payplane_checkout_local",
    "rk_live_abcdefghijklmnop",
    "whsec_0123456789abcdefABCDEF+/=",
    "pi_3Pgc72B7WZ01zgkW1a2b3c4d_secret_Xy7Zq9Wv8Ut6Sr5",
    "seti_1Pgc72B7WZ01zgkW_secret_abcdefghij",
]


def test_luhn() -> None:
    assert luhn_valid(VISA) and luhn_valid(AMEX) and luhn_valid(LONG)
    assert not luhn_valid("4242424242424241")


@pytest.mark.parametrize("pan", [VISA, AMEX, LONG, "4000 0025 0000 3155", "4000-0000-0000-0077"])
def test_card_numbers_are_masked_but_for_the_last_four(pan: str) -> None:
    digits = pan.replace(" ", "").replace("-", "")
    masked = redact_secrets(f"No such PaymentMethod: '{pan}'; see /v1/payment_methods/{pan}")
    assert digits not in masked.replace(" ", "").replace("-", "").replace("*", "")
    assert pan not in masked
    assert masked.count("*" * (len(digits) - 4) + digits[-4:]) == 2


@pytest.mark.parametrize(
    "text",
    [
        "4242424242424241",  # fails the Luhn check
        "order 123456789012",  # 12 digits: too short
        "12345678901234567890123",  # 23 digits: longer than any card
        "timestamp 1700000000 and amount 99999999",
        "pay_0123456789abcdef01234567",
    ],
)
def test_what_is_not_a_card_number_is_left_alone(text: str) -> None:
    assert redact_secrets(text) == text


@pytest.mark.parametrize("secret", SECRETS)
def test_secrets_are_masked(secret: str) -> None:
    masked = redact_secrets(f"key={secret} and 'Bearer {secret}'")
    assert secret not in masked
    prefix = secret.split("_secret_")[0] + "_secret_" if "_secret_" in secret else secret[:5]
    assert masked.count(prefix) == 2  # what it was stays readable


def test_a_publishable_key_and_ids_stay() -> None:
    text = "pk_test_abc123 pi_3Pgc72B7WZ01zgkW re_1Pgc72 ch_3Pgc72 whsec"
    assert redact_secrets(text) == text


@pytest.fixture
def service_log() -> Iterator[io.StringIO]:
    """configure_logging as a service process runs it, its output captured."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.getLogger("stripe").level
    configure_logging("svc", "DEBUG")
    out = io.StringIO()
    (handler,) = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(out)
    try:
        yield out
    finally:
        root.handlers[:], level, stripe_level = saved
        root.setLevel(level)
        logging.getLogger("stripe").setLevel(stripe_level)


def test_every_record_through_the_service_handler_is_redacted(service_log: io.StringIO) -> None:
    log = logging.getLogger("payplane.test.redaction")
    log.info("payment_method %s refused", VISA)
    log.warning("keys %(a)s %(b)s", {"a": SECRETS[0], "b": SECRETS[4]})
    log.info(f"client secret {SECRETS[5]} in an f-string")
    try:
        raise ValueError(f"No such PaymentMethod: '{VISA}' with {SECRETS[2]}")
    except ValueError:
        log.exception("unexpected error")
    log.info("stack", stack_info=True, extra={"note": VISA})
    text = service_log.getvalue()
    assert "payment_method ************4242 refused" in text
    assert "ValueError: No such PaymentMethod" in text  # the traceback is kept, masked
    for secret in [VISA, *SECRETS]:
        assert secret not in text


def test_the_stripe_sdk_logs_no_request_at_info(service_log: io.StringIO) -> None:
    stripe_log = logging.getLogger("stripe")
    stripe_log.info("message='Request to Stripe api' url=https://api.stripe.com/v1/x")
    stripe_log.warning("message='a warning still shows'")
    text = service_log.getvalue()
    assert "Request to Stripe api" not in text
    assert "a warning still shows" in text


def test_the_filter_is_idempotent_and_survives_a_malformed_call() -> None:
    f = RedactingFilter()
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s %s", (VISA,), None)
    assert f.filter(record) and f.filter(record)
    assert VISA not in record.getMessage()
