"""Typed, validating access to request parameters.

A handler reads each parameter it accepts through `Params`; `done()` then refuses any it
did not read, with Stripe's message and the offending `param`, so an unknown or misspelt
parameter is a 400 and never silently ignored.
"""

from __future__ import annotations

from typing import Any, NoReturn

from .errors import InvalidRequest

__all__ = ["CURRENCIES", "ZERO_DECIMAL", "ParamError", "Params", "merge_metadata"]

# ISO 4217 currencies Stripe settles or presents in (a practical subset).
CURRENCIES = frozenset(
    "usd eur gbp jpy cad aud chf sek nok dkk pln czk huf nzd sgd hkd mxn brl inr krw "
    "zar aed ils thb myr php idr try ron bgn".split()
)
ZERO_DECIMAL = frozenset("jpy krw bif clp djf gnf kmf mga pyg rwf ugx vnd vuv xaf xof xpf".split())
_TRUE = {"true", "1"}
_FALSE = {"false", "0"}
_MAX_INT = 99_999_999_999


class ParamError(InvalidRequest):
    """A parameter failed validation: Stripe stores nothing against the idempotency key."""


class Params:
    def __init__(self, data: dict[str, Any] | None, prefix: str = "") -> None:
        if data is not None and not isinstance(data, dict):
            raise ParamError(f"Invalid object for {prefix or 'body'}.", param=prefix or None)
        self._data = data or {}
        self._prefix = prefix
        self._used: set[str] = set()

    def _name(self, key: str) -> str:
        return f"{self._prefix}[{key}]" if self._prefix else key

    def _fail(self, message: str, key: str) -> NoReturn:
        raise ParamError(message, param=self._name(key))

    def has(self, key: str) -> bool:
        return key in self._data

    def keys(self) -> list[str]:
        return list(self._data)

    def raw(self, key: str) -> Any:
        self._used.add(key)
        return self._data.get(key)

    def _get(self, key: str, required: bool) -> Any:
        self._used.add(key)
        if key not in self._data:
            if required:
                self._fail(f"Missing required param: {self._name(key)}.", key)
            return None
        return self._data[key]

    def string(
        self,
        key: str,
        required: bool = False,
        *,
        choices: set[str] | frozenset[str] | None = None,
        max_len: int = 5000,
        empty_is_none: bool = True,
    ) -> str | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, str):
            self._fail(f"Invalid string: {self._name(key)} must be a string.", key)
        if value == "" and empty_is_none:
            if required:
                self._fail(f"Missing required param: {self._name(key)}.", key)
            return None
        if len(value) > max_len:
            self._fail(
                f"Invalid string: {self._name(key)} must be at most {max_len} characters.", key
            )
        if choices is not None and value not in choices:
            allowed = ", ".join(sorted(choices))
            self._fail(
                f"Invalid {self._name(key)}: must be one of {allowed}.",
                key,
            )
        return value

    def integer(
        self, key: str, required: bool = False, *, min: int | None = None, max: int | None = None
    ) -> int | None:
        value = self._get(key, required)
        if value is None or value == "":
            if required:
                self._fail(f"Missing required param: {self._name(key)}.", key)
            return None
        if not isinstance(value, str) or not value.lstrip("-").isdigit():
            self._fail(f"Invalid integer: {value if isinstance(value, str) else '(object)'}", key)
        n = int(value)
        if abs(n) > _MAX_INT:
            self._fail(f"Invalid integer: {value} is too large.", key)
        if min is not None and n < min:
            self._fail(f"This value must be greater than or equal to {min}.", key)
        if max is not None and n > max:
            self._fail(f"This value must be less than or equal to {max}.", key)
        return n

    def amount(self, key: str = "amount", required: bool = False, *, min: int = 1) -> int | None:
        return self.integer(key, required, min=min, max=99_999_999)

    def boolean(self, key: str, required: bool = False) -> bool | None:
        value = self._get(key, required)
        if value is None:
            return None
        if isinstance(value, str):
            if value.lower() in _TRUE:
                return True
            if value.lower() in _FALSE:
                return False
        self._fail(f"Invalid boolean: {value if isinstance(value, str) else '(object)'}", key)

    def currency(self, key: str = "currency", required: bool = False) -> str | None:
        value = self.string(key, required, max_len=3)
        if value is None:
            return None
        value = value.lower()
        if value not in CURRENCIES:
            self._fail(
                f"Invalid currency: {value}. Stripe currently supports these currencies: "
                + ", ".join(sorted(CURRENCIES)),
                key,
            )
        return value

    def array(self, key: str, required: bool = False) -> list[Any] | None:
        value = self._get(key, required)
        if value is None:
            return None
        if value == "":
            return []
        if isinstance(value, dict) and not value:
            return []
        if not isinstance(value, list):
            self._fail(f"Invalid array: {self._name(key)} must be an array.", key)
        return value

    def strings(self, key: str, required: bool = False) -> list[str] | None:
        items = self.array(key, required)
        if items is None:
            return None
        for item in items:
            if not isinstance(item, str):
                self._fail(f"Invalid array: {self._name(key)} must contain strings.", key)
        return items

    def sub(self, key: str, required: bool = False) -> Params | None:
        value = self._get(key, required)
        if value is None:
            return None
        if value == "":
            return Params({}, self._name(key))
        if not isinstance(value, dict):
            self._fail(f"Invalid object: {self._name(key)} must be a hash.", key)
        return Params(value, self._name(key))

    def metadata(self, key: str = "metadata") -> dict[str, str] | None:
        """Stripe's limits: 50 keys, keys up to 40 chars, values up to 500; '' unsets a key."""
        value = self._get(key, False)
        if value is None:
            return None
        if value == "":
            return {}
        if not isinstance(value, dict):
            self._fail("Invalid object: metadata must be a hash.", key)
        if len(value) > 50:
            self._fail("Invalid metadata: metadata can have at most 50 keys.", key)
        for k, v in value.items():
            if len(k) > 40:
                self._fail(
                    f"Invalid metadata: key {k[:40]!r}... is longer than 40 characters.", key
                )
            if not isinstance(v, str):
                self._fail(f"Invalid metadata: value for {k!r} must be a string.", key)
            if len(v) > 500:
                self._fail(f"Invalid metadata: value for {k!r} is longer than 500 characters.", key)
        return dict(value)

    def done(self) -> None:
        for key in self._data:
            if key not in self._used:
                raise ParamError(
                    f"Received unknown parameter: {self._name(key)}", param=self._name(key)
                )


def merge_metadata(current: dict[str, str], update: dict[str, str] | None) -> dict[str, str]:
    """Stripe semantics: keys merge; an empty value deletes the key; '' for the whole unsets."""
    if update is None:
        return current
    if not update:
        return {}
    merged = dict(current)
    for k, v in update.items():
        if v == "":
            merged.pop(k, None)
        else:
            merged[k] = v
    return merged
