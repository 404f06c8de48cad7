"""The console's settings, read once from the environment (upper-cased field names)."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from payplane.settings import ServiceSettings

from .roles import Role
from .users import User, parse_users

__all__ = ["ConsoleSettings", "parse_credentials"]


def parse_credentials(raw: str) -> dict[Role, str]:
    """`role=token,...` -> {Role: token}; errors name the role, never the token."""
    out: dict[Role, str] = {}
    for pair in filter(None, (p.strip() for p in raw.split(","))):
        role, sep, token = pair.partition("=")
        role = role.strip()
        if not sep or not token.strip():
            raise ValueError(f"expected role=token pairs, got {role!r}=...")
        if role not in Role.__members__.values():
            raise ValueError(f"{role!r} is not a role ({', '.join(r.value for r in Role)})")
        out[Role(role)] = token.strip()
    return out


class ConsoleSettings(ServiceSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    service_name: str = "console"
    console_host: str = "127.0.0.1"
    console_port: int = Field(default=8100, ge=0, lt=65536)
    checkout_address: str = "127.0.0.1:50051"
    ledger_address: str = "127.0.0.1:50054"
    # The console's own caller credential at the services for each role: role=token,...
    console_credentials: str = Field(repr=False)
    # Who may sign in: name:role:scrypt$...,... (python -m console hash-password)
    console_users: str = Field(repr=False)
    console_session_secret: str = Field(repr=False, min_length=32)
    console_session_max_age_s: float = Field(default=8 * 3600, gt=0)
    console_session_idle_s: float = Field(default=30 * 60, gt=0)
    # Secure cookies (and the __Host- name): set wherever the console is served over HTTPS.
    console_cookie_secure: bool = False
    grpc_timeout_s: float = Field(default=10.0, gt=0)
    # A link for trace ids, e.g. http://jaeger:16686/trace/{trace_id}; empty: ids only.
    trace_url_template: str = ""

    @field_validator("console_credentials")
    @classmethod
    def _credentials(cls, value: str) -> str:
        if not parse_credentials(value):
            raise ValueError("at least one role=token pair is required")
        return value

    @field_validator("console_users")
    @classmethod
    def _users(cls, value: str) -> str:
        if not parse_users(value):
            raise ValueError("at least one name:role:hash entry is required")
        return value

    @model_validator(mode="after")
    def _every_role_has_a_credential(self) -> ConsoleSettings:
        missing = sorted({u.role.value for u in self.users.values()} - set(self.credentials))
        if missing:
            raise ValueError(f"CONSOLE_CREDENTIALS has no credential for {', '.join(missing)}")
        return self

    @property
    def credentials(self) -> dict[Role, str]:
        return parse_credentials(self.console_credentials)

    @property
    def users(self) -> dict[str, User]:
        return parse_users(self.console_users)
