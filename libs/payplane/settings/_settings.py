from __future__ import annotations

import hashlib
from typing import TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["GrpcServiceSettings", "ServiceSettings", "SettingsError", "load", "parse_caller_tokens"]


class SettingsError(Exception):
    """The environment does not describe a runnable process; the message names each variable."""


class ServiceSettings(BaseSettings):
    """Settings every payplane process has. Variables are upper-case field names."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    service_name: str = "payplane"
    log_level: str = "INFO"


class GrpcServiceSettings(ServiceSettings):
    """What every gRPC service of payplane reads: its database, NATS, its listening address,
    and who may call it (`CALLER_TOKENS=caller=token,...`). Services override the defaults."""

    database_url: str = "sqlite:///payplane.db"
    database_schema: str | None = None  # PostgreSQL schema (one per service)
    nats_url: str = "nats://127.0.0.1:14222"
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051
    caller_tokens: str = Field(repr=False)
    # Seals page tokens (payplane.grpckit.PageTokens). Empty: derived from CALLER_TOKENS,
    # which every replica shares and callers never see (rotating them ends open paginations).
    page_token_secret: str = Field(default="", repr=False)

    @field_validator("caller_tokens")
    @classmethod
    def _tokens(cls, value: str) -> str:
        if not parse_caller_tokens(value):
            raise ValueError("at least one caller=token pair is required")
        return value

    @property
    def tokens(self) -> dict[str, str]:
        """{token: caller}"""
        return parse_caller_tokens(self.caller_tokens)

    @property
    def page_token_key(self) -> bytes:
        """32 bytes, the same on every replica of a service."""
        digest = hashlib.sha256(b"payplane.page-token.v1")
        if self.page_token_secret:
            digest.update(self.page_token_secret.encode())
        else:
            for token in sorted(self.tokens):
                digest.update(hashlib.sha256(token.encode()).digest())
        return digest.digest()


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
