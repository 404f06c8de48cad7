from __future__ import annotations

import pytest
from pydantic_settings import SettingsConfigDict

from payplane.settings import GrpcServiceSettings, ServiceSettings, SettingsError, load


class _Demo(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_", frozen=True)

    database_url: str
    port: int = 50051


def test_reads_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_DATABASE_URL", "sqlite:///x.db")
    monkeypatch.setenv("DEMO_PORT", "6000")
    settings = load(_Demo)
    assert settings.database_url == "sqlite:///x.db" and settings.port == 6000


def test_missing_and_malformed_variables_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEMO_DATABASE_URL", raising=False)
    monkeypatch.setenv("DEMO_PORT", "not-a-port")
    with pytest.raises(SettingsError) as err:
        load(_Demo)
    assert "DEMO_DATABASE_URL" in str(err.value) and "DEMO_PORT" in str(err.value)


def test_caller_tokens_map_tokens_to_callers_and_refuse_junk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CALLER_TOKENS", "storefront=tok-a, admin=tok-b")
    assert load(GrpcServiceSettings).tokens == {"tok-a": "storefront", "tok-b": "admin"}
    monkeypatch.setenv("CALLER_TOKENS", "storefront=s3cret-value,admin")
    with pytest.raises(SettingsError) as err:
        load(GrpcServiceSettings)
    assert "CALLER_TOKENS" in str(err.value) and "s3cret" not in str(err.value)
