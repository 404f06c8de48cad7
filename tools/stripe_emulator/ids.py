"""Stripe-style object ids: a prefix and 24 base-62 characters."""

from __future__ import annotations

import random

__all__ = ["new_id"]

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_rng = random.Random()


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "_" + "".join(_rng.choices(_ALPHABET, k=length))


def seed(value: int | None) -> None:
    _rng.seed(value)
