"""Hypothesis strategies for any protobuf request, built from its descriptor.

Every field gets the values that broke payplane before and the ones most likely to break it
next: integer and timestamp extremes (int64 bounds, 2^62, 1e13 seconds, negative), huge and
unicode strings (100 KB, accents, emoji, NUL), forged page tokens (floats that overflow,
integers past int64, a sequence with a balance), every enum value and some that do not
exist, maps past Stripe's limits. Field names steer the choice toward values a handler
understands (a currency, an account, a known id) often enough that the fuzz reaches past
the first check into the code behind it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import strategies as st

__all__ = ["Hints", "message_strategy"]

INT64 = (-(2**63), 2**63 - 1)
INT32 = (-(2**31), 2**31 - 1)
_INT_EXTREMES = [0, 1, -1, 49, 50, 2**31 - 1, -(2**31), 2**53 + 1, 2**62, 2**63 - 1, -(2**63)]
_SECONDS = [0, 1, 1_700_000_000, 253_402_300_799, 253_402_300_800, 10**13, -1, -(2**62), 2**62]
_SECONDS += [2**63 - 1, -(2**63)]
_NANOS = [0, 999_999_999, 1_000_000_000, -1, 2**31 - 1]
_HUGE = "x" * 100_000
_ODD_STRINGS = [
    "",
    "x",
    _HUGE,
    "é" * 30_000,
    "\U0001f4b3" * 1_000,
    "a\x00b",
    "4242424242424242",
    "' OR 1=1 --",
    "%s%n",
    "../../etc/passwd",
    " ",
]


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


FORGED_TOKENS = [
    _b64("1e300|pay_x"),
    _b64("inf|rev_x"),
    _b64("nan|x"),
    "9" * 30,
    "-1",
    "1:999999999",
    "99999999999999999999:0",
    "dsc_" + "z" * 60,
    _b64("\x01" + "0" * 16 + "1"),
    "A" * 2_000,
    "!!",
]
CURRENCIES = ["usd", "eur", "gbp", "jpy", "USD", "xyz", "", "us"]
CARD_LIKE = ["4242424242424242", "4000 0025 0000 3155", "tok_visa", "card_123"]
PAYMENT_METHODS = ["pm_card_visa", "pm_card_threeDSecure2Required", "pm_card_chargeDeclined"]
PAYMENT_METHODS += ["pm_card_riskLevelElevated", "pm_nope", *CARD_LIKE]


class Hints:
    """What the platform knows, offered beside the generated values: ids of real objects,
    meaningful strings per field name, and per message type a valid template that the
    strategy mutates a few fields at a time (so a request gets past the first check and the
    code behind it meets the odd value)."""

    def __init__(
        self,
        ids: Sequence[str] = (),
        strings: Mapping[str, Sequence[str]] | None = None,
        templates: Sequence[Message] = (),
    ) -> None:
        self.ids = list(ids)
        self.strings = dict(strings or {})
        self.templates = {t.DESCRIPTOR.full_name: t for t in templates}


def _text() -> st.SearchStrategy[str]:
    return st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


def _string(field: FieldDescriptor, hints: Hints) -> st.SearchStrategy[str]:
    name = field.name
    odd = st.sampled_from(_ODD_STRINGS) | _text()
    named = hints.strings.get(name)
    if named:
        return st.sampled_from(list(named)) | odd
    if name == "page_token":
        return st.sampled_from(FORGED_TOKENS) | odd
    if name == "id" or name.endswith("_id"):
        prefixes = ["pay_", "rev_", "je_", "rr_", "dsc_", "pi_"]
        made = st.builds(lambda p, h: p + h, st.sampled_from(prefixes), st.text("0123456789abcdef"))
        known = st.sampled_from(hints.ids) if hints.ids else made
        return known | known | made | odd
    if name == "currency":
        return st.sampled_from(CURRENCIES) | odd
    if name == "payment_method":
        return st.sampled_from(PAYMENT_METHODS) | odd
    return odd


def _integer(field: FieldDescriptor) -> st.SearchStrategy[int]:
    t = field.type
    if t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        lo, hi = 0, 2**32 - 1
    elif t in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        lo, hi = 0, 2**64 - 1
    elif t in (
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SFIXED32,
    ):
        lo, hi = INT32
    else:
        lo, hi = INT64
    extremes = [v for v in _INT_EXTREMES if lo <= v <= hi]
    typical = (
        st.integers(0, 10_000) if field.name in ("amount_minor", "page_size") else st.nothing()
    )
    return st.sampled_from(extremes) | st.integers(lo, hi) | typical


def _timestamp() -> st.SearchStrategy[Timestamp]:
    seconds = st.sampled_from(_SECONDS) | st.integers(*INT64) | st.integers(0, 2_000_000_000)
    nanos = st.sampled_from(_NANOS) | st.integers(*INT32)
    return st.builds(lambda s, n: Timestamp(seconds=s, nanos=n), seconds, nanos | st.just(0))


def _scalar(field: FieldDescriptor, hints: Hints, depth: int) -> st.SearchStrategy[Any]:
    t = field.type
    if t == FieldDescriptor.TYPE_STRING:
        return _string(field, hints)
    if t == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(width=32 if t == FieldDescriptor.TYPE_FLOAT else 64)
    if t == FieldDescriptor.TYPE_ENUM:
        values = [v.number for v in field.enum_type.values]
        return st.sampled_from([*values, max(values) + 1, 999, -1])
    if t == FieldDescriptor.TYPE_MESSAGE:
        return message_strategy(field.message_type, hints, depth + 1)
    return _integer(field)


def message_strategy(
    descriptor: Descriptor, hints: Hints | None = None, depth: int = 0
) -> st.SearchStrategy[Message]:
    """Messages of `descriptor`'s type, each field set or left unset by the draw."""
    from google.protobuf import message_factory

    hints = hints or Hints()
    cls = message_factory.GetMessageClass(descriptor)
    if descriptor.full_name == "google.protobuf.Timestamp":
        return _timestamp()
    if depth > 3:
        return st.builds(cls)
    optional = _field_strategies(descriptor, hints, depth)
    generated = st.fixed_dictionaries({}, optional=optional).map(_builder(cls, descriptor))
    template = hints.templates.get(descriptor.full_name)
    if template is None:
        return generated
    mutated = st.fixed_dictionaries({}, optional=optional).map(_builder(cls, descriptor, template))
    return st.one_of(generated, mutated, mutated)


def _field_strategies(
    descriptor: Descriptor, hints: Hints, depth: int
) -> dict[str, st.SearchStrategy[Any]]:
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key = _scalar(field.message_type.fields_by_name["key"], hints, depth)
            value = _scalar(field.message_type.fields_by_name["value"], hints, depth)
            small = st.dictionaries(key, value, max_size=4)
            many = st.integers(45, 60).map(lambda n: {f"k{i}": "v" for i in range(n)})
            optional[field.name] = small | many
        elif field.is_repeated:
            optional[field.name] = st.lists(_scalar(field, hints, depth), max_size=4)
        else:
            optional[field.name] = _scalar(field, hints, depth)
    return optional


def _builder(
    cls: type[Message], descriptor: Descriptor, base: Message | None = None
) -> Callable[[dict[str, Any]], Message]:
    def build(values: dict[str, Any]) -> Message:
        msg = cls()
        if base is not None:
            msg.CopyFrom(base)
        for name, value in values.items():
            field = descriptor.fields_by_name[name]
            msg.ClearField(name)
            target = getattr(msg, name)
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                target.update(value)
            elif field.is_repeated:
                if field.type == FieldDescriptor.TYPE_MESSAGE:
                    for item in value:
                        target.add().CopyFrom(item)
                else:
                    target.extend(value)
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                target.CopyFrom(value)
            else:
                setattr(msg, name, value)
        return msg

    return build
