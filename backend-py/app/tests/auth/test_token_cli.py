"""``make token``: the CLI's main, against the test database (commits; cleaned up)."""

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from src.cli.token import main
from src.domain.entity.user import CurrentUser
from src.domain.errors import AuthenticationError
from src.infra.db_client import libpq_url
from src.middleware.auth_middleware import JwksCache, TokenVerifier
from src.settings import Settings, get_settings
from tests.auth.jwks import JwksServer
from tests.conftest import make_settings

# Sync tests: main() runs its own event loop, as it does under `make token`.


@pytest.fixture
def email(database_url: str) -> Iterator[str]:
    """A fresh address; its auth user (and cascade) is deleted afterwards."""
    address = f"cli-{uuid.uuid4().hex[:10]}@example.com"
    yield address
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute("delete from auth.users where email = %s", (address,))


@pytest.fixture
def es256_key_path(tmp_path: Path) -> Path:
    """A fresh EC P-256 private key in PEM, as DEV_JWT_PRIVATE_KEY_PATH wants."""
    key_path = tmp_path / "dev-es256.pem"
    key_path.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return key_path


def run(argv: list[str], settings: Settings, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv, settings) == 0
    return capsys.readouterr().out.splitlines()[-1]


def verify(settings: Settings, token: str, jwks_url: str | None = None) -> CurrentUser:
    async def _verify() -> CurrentUser:
        async with httpx.AsyncClient() as client:
            jwks = None
            if jwks_url:
                jwks = JwksCache(
                    http_client=client, url=jwks_url, ttl_s=60, timeout_s=2
                )
            return await TokenVerifier(settings, jwks).verify(token)

    return asyncio.run(_verify())


def general_user_email(database_url: str, user_id: uuid.UUID) -> str | None:
    with psycopg.connect(libpq_url(database_url)) as conn:
        row = conn.execute(
            "select u.email from general_users g join auth.users u using (id) "
            "where g.id = %s",
            (user_id,),
        ).fetchone()
    return None if row is None else str(row[0])


def test_token_prints_a_verifiable_token_for_a_new_user(
    database_url: str, email: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(database_url)
    token = run(["--email", email.upper()], settings, capsys)

    user = verify(settings, token)

    assert user.email == email
    assert general_user_email(database_url, user.id) == email
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["app_metadata"] == {"provider": "email", "providers": ["email"]}
    assert claims["aal"] == "aal1"
    assert claims["is_anonymous"] is False
    assert uuid.UUID(claims["session_id"])
    assert claims["exp"] - claims["iat"] == settings.dev_token_ttl_s


def test_token_reuses_an_existing_user(
    database_url: str, email: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(database_url)
    first = verify(settings, run(["--email", email], settings, capsys))
    second = verify(settings, run(["--email", email], settings, capsys))
    assert first.id == second.id


def test_token_uses_the_configured_issuer(
    database_url: str, email: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(database_url, supabase_url="https://proj.supabase.co")
    token = run(["--email", email], settings, capsys)
    assert verify(settings, token).claims["iss"] == "https://proj.supabase.co/auth/v1"


def test_token_signs_es256_with_a_configured_key(
    database_url: str,
    email: str,
    es256_key_path: Path,
    jwks: JwksServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(database_url, dev_jwt_private_key_path=es256_key_path)
    jwks.keys = json.loads(run(["--jwks"], settings, capsys))["keys"]

    token = run(["--email", email], settings, capsys)

    assert jwt.get_unverified_header(token)["kid"] == jwks.keys[0]["kid"]
    assert verify(settings, token, jwks_url=jwks.url).email == email


def test_token_refuses_to_run_in_production(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(
        database_url, environment="production", supabase_jwt_secret="p" * 40
    )
    assert main(["--email", "alice@example.com"], settings) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "production" in captured.err


def test_token_refuses_what_is_not_an_email(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--email", "alice"], make_settings(database_url)) == 2
    assert capsys.readouterr().out == ""


def test_jwks_needs_a_key(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--jwks"], make_settings(database_url)) == 2
    assert "DEV_JWT_PRIVATE_KEY_PATH" in capsys.readouterr().err


def test_token_reports_invalid_settings_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Production with the development secret: refused by the settings themselves.
    monkeypatch.setenv("ENVIRONMENT", "production")
    get_settings.cache_clear()
    try:
        assert main(["--email", "alice@example.com"]) == 2
    finally:
        get_settings.cache_clear()
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "invalid settings" in captured.err


def test_the_api_trusts_the_dev_es256_key_without_a_jwks_server(
    database_url: str,
    email: str,
    es256_key_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(database_url, dev_jwt_private_key_path=es256_key_path)
    token = run(["--email", email], settings, capsys)

    async def _verify() -> CurrentUser:
        async with httpx.AsyncClient() as client:
            verifier = TokenVerifier.from_settings(settings, client)
            return await verifier.verify(token)

    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    assert asyncio.run(_verify()).email == email
    other_key = make_settings(database_url)
    with pytest.raises(AuthenticationError, match="not accepted"):
        verify(other_key, token)
