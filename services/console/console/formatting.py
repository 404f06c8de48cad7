"""How pages show money, times and ids (jinja filters)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

__all__ = ["FILTERS", "money", "timestamp"]

# Stripe's zero-decimal currencies (amounts are whole units).
_ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
     "xaf", "xof", "xpf"}
)  # fmt: skip


def minor_to_text(amount_minor: int, currency: str) -> str:
    """12345, "usd" -> "123.45 USD"; 500, "jpy" -> "500 JPY" (integers only, no floats)."""
    currency = currency.lower()
    sign = "-" if amount_minor < 0 else ""
    value = abs(amount_minor)
    if currency in _ZERO_DECIMAL:
        return f"{sign}{value:,} {currency.upper()}"
    return f"{sign}{value // 100:,}.{value % 100:02d} {currency.upper()}"


def money(m: Any) -> str:
    """A payplane.common.v1.Money."""
    if m is None or not getattr(m, "currency", ""):
        return "-"
    return minor_to_text(int(m.amount_minor), str(m.currency))


def to_datetime(value: Any) -> datetime | None:
    if isinstance(value, Timestamp):
        if value.seconds == 0 and value.nanos == 0:
            return None
        return value.ToDatetime(tzinfo=UTC)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, datetime):
        return value
    return None


def timestamp(value: Any) -> str:
    when = to_datetime(value)
    return "-" if when is None else when.strftime("%Y-%m-%d %H:%M:%S UTC")


def age(value: Any, now: float | None = None) -> str:
    when = to_datetime(value)
    if when is None:
        return "-"
    seconds = int((now if now is not None else datetime.now(UTC).timestamp()) - when.timestamp())
    if seconds < 120:
        return f"{max(seconds, 0)} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172_800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86_400} d"


def enum_name(value: str) -> str:
    """PAYMENT_STATUS_REQUIRES_CAPTURE -> requires capture."""
    for prefix in ("PAYMENT_STATUS_", "REVIEW_STATUS_", "FRAUD_DECISION_", "RETRY_ADVICE_"):
        if value.startswith(prefix):
            value = value[len(prefix) :]
    return value.replace("_", " ").lower()


FILTERS = {"money": money, "ts": timestamp, "age": age, "enum": enum_name}
