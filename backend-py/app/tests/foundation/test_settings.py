from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from src.settings import DEV_JWT_SECRET, REPO_ROOT, Settings


def build(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_production_refuses_the_development_jwt_secret() -> None:
    with pytest.raises(ValidationError, match="development default"):
        build(
            environment="production",
            database_url="postgresql://db/x",
            supabase_jwt_secret=SecretStr(DEV_JWT_SECRET),
        )


def test_production_requires_a_database_url() -> None:
    with pytest.raises(ValidationError, match="DATABASE_URL must be set"):
        build(environment="production", supabase_jwt_secret=None)


def test_production_refuses_a_development_signing_key() -> None:
    with pytest.raises(ValidationError, match="DEV_JWT_PRIVATE_KEY_PATH"):
        build(
            environment="production",
            database_url="postgresql://db/x",
            supabase_jwt_secret=SecretStr("a-real-secret-of-the-project-0123456789"),
            dev_jwt_private_key_path=Path("dev-key.pem"),
        )


def test_production_accepts_safe_values() -> None:
    settings = build(
        environment="production",
        database_url="postgresql://db/x",
        supabase_jwt_secret=SecretStr("a-real-secret-of-the-project-0123456789"),
    )
    assert settings.environment == "production"


def test_the_embedded_folder_is_relative_to_the_repository() -> None:
    assert build().embedded_db_path == REPO_ROOT / ".data/postgres"
    assert build(embedded_db_dir=Path("/var/pg")).embedded_db_path == Path("/var/pg")


def test_issuer_and_jwks_follow_the_supabase_url() -> None:
    settings = build(supabase_url="https://abc.supabase.co/")
    assert settings.expected_issuer == "https://abc.supabase.co/auth/v1"
    assert (
        settings.resolved_jwks_url
        == "https://abc.supabase.co/auth/v1/.well-known/jwks.json"
    )
    explicit = build(jwt_issuer="iss", jwks_url="http://127.0.0.1:1/jwks")
    assert explicit.expected_issuer == "iss"
    assert explicit.resolved_jwks_url == "http://127.0.0.1:1/jwks"
    assert build().expected_issuer is None
    assert build().resolved_jwks_url is None


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9123")
    monkeypatch.setenv("CORS_ORIGINS", '["https://app.example.com"]')
    settings = build()
    assert settings.port == 9123
    assert settings.cors_origins == ["https://app.example.com"]
