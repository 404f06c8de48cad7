"""ledger's settings, read once from the environment (see the README's table)."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from payplane.settings import ServiceSettings, parse_caller_tokens

__all__ = ["LedgerSettings"]


class LedgerSettings(ServiceSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    service_name: str = "ledger"
    database_url: str = "sqlite:///.run/ledger.db"
    database_schema: str | None = None
    nats_url: str = "nats://127.0.0.1:14222"
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50054
    caller_tokens: str = Field(repr=False)

    @field_validator("caller_tokens")
    @classmethod
    def _tokens(cls, value: str) -> str:
        if not parse_caller_tokens(value):
            raise ValueError("at least one caller=token pair is required")
        return value

    @property
    def tokens(self) -> dict[str, str]:
        return parse_caller_tokens(self.caller_tokens)
