from __future__ import annotations

from typing import TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ServiceSettings", "SettingsError", "load", "parse_caller_tokens"]


class SettingsError(Exception):
    """The environment does not describe a runnable process; the message names each variable."""


class ServiceSettings(BaseSettings):
    """Settings every payplane process has. Variables are upper-case field names."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    service_name: str = "payplane"
    log_level: str = "INFO"


S = TypeVar("S", bound=BaseSettings)


def load(cls: type[S], **overrides: object) -> S:
    """Read `cls` from the environment once; fail fast with every bad variable named."""
    try:
        return cls(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        prefix = cls.model_config.get("env_prefix", "") or ""
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "?"
            var = (prefix + field).upper()
            problems.append(f"{var}: {err['msg']}")
        raise SettingsError(
            f"invalid configuration for {cls.__name__}: " + "; ".join(problems)
        ) from None


def parse_caller_tokens(raw: str) -> dict[str, str]:
    """`caller=token,caller2=token2` (a CALLER_TOKENS value) -> {token: caller}.

    Errors name the caller, never the token.
    """
    tokens: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in raw.split(","))):
        caller, sep, token = pair.partition("=")
        if not sep or not caller.strip() or not token.strip():
            raise ValueError(f"expected caller=token pairs, got {caller.strip()!r}=...")
        tokens[token.strip()] = caller.strip()
    return tokens
