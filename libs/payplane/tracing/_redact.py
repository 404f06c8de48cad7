from __future__ import annotations

import logging
import re

__all__ = ["RedactingFilter", "luhn_valid", "redact_secrets"]

# A card number: 13 to 19 digits, optionally grouped by single spaces or dashes, standing
# alone (no digit right before or after). Only Luhn-valid runs are masked.
_PAN = re.compile(r"(?<![\d])\d(?:[ -]?\d){12,18}(?![\d])")
# Stripe secret and restricted keys (dev keys may carry underscores), and webhook secrets.
_KEY = re.compile(r"\b((?:sk|rk)_(?:test|live)_)([A-Za-z0-9_]+)")
_WHSEC = re.compile(r"\b(whsec_)([A-Za-z0-9_+/=]+)")
# Client secrets of intents (and setup intents, sources): `<id>_secret_<secret>`.
_CLIENT_SECRET = re.compile(r"\b((?:pi|seti|src)_[A-Za-z0-9]+_secret_)([A-Za-z0-9]+)")


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _mask_pan(match: re.Match[str]) -> str:
    raw = match.group(0)
    digits = raw.replace(" ", "").replace("-", "")
    if not luhn_valid(digits):
        return raw
    return "*" * (len(digits) - 4) + digits[-4:]


def _mask_key(match: re.Match[str]) -> str:
    secret = match.group(2)
    return match.group(1) + "****" + (secret[-4:] if len(secret) > 12 else "")


def redact_secrets(text: str) -> str:
    """`text` with card numbers (Luhn-valid, 13-19 digits), Stripe secret and restricted
    keys, webhook secrets and client secrets masked."""
    if not text:
        return text
    text = _KEY.sub(_mask_key, text)
    text = _WHSEC.sub(lambda m: m.group(1) + "****", text)
    text = _CLIENT_SECRET.sub(lambda m: m.group(1) + "****", text)
    return _PAN.sub(_mask_pan, text)


class RedactingFilter(logging.Filter):
    """The last line of defence on a handler: whatever a library or a careless log call put
    in a record (its message, its arguments, its exception and stack text) leaves with
    card numbers and secrets masked. The record's message is rendered here, once."""

    _exc_formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: mask the parts as they are
            message = " ".join(str(part) for part in (record.msg, record.args))
        record.msg = redact_secrets(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._exc_formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_secrets(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_secrets(record.stack_info)
        return True
