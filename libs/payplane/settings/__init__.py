"""Typed process settings, read once from the environment.

    SettingsError            a variable is missing or malformed (names it)

Usage: subclass `ServiceSettings`, declare fields, call `load(MySettings)` once in the
composition root. Nothing reads `os.environ` anywhere else.
"""

from __future__ import annotations

from ._settings import (
    GrpcServiceSettings,
    ServiceSettings,
    SettingsError,
    load,
    parse_caller_tokens,
)

__all__ = ["GrpcServiceSettings", "ServiceSettings", "SettingsError", "load", "parse_caller_tokens"]
