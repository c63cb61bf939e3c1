"""Fixtures of the auth tests: signing keys, a JWKS endpoint, an app that uses it."""

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from src.app import create_app
from src.cli.token import LOCAL_SUPABASE_ISSUER
from src.infra.ai_providers import AIProviders
from src.infra.db_client import Database
from src.runtime import runtime
from src.settings import Settings
from tests.auth.jwks import JwksServer, SigningKey, serve_jwks
from tests.conftest import make_settings


@pytest.fixture(scope="session")
def es256_key() -> SigningKey:
    """The project's current EC key."""
    return SigningKey.es256()


@pytest.fixture(scope="session")
def rs256_key() -> SigningKey:
    """An RSA key the project also publishes."""
    return SigningKey.rs256()


@pytest.fixture(scope="session")
def jwks_server() -> Iterator[JwksServer]:
    """One JWKS endpoint for the test session."""
    with serve_jwks() as server:
        yield server


@pytest.fixture
def jwks(
    jwks_server: JwksServer, es256_key: SigningKey, rs256_key: SigningKey
) -> JwksServer:
    """The endpoint, healthy and publishing both keys."""
    jwks_server.reset()
    jwks_server.publish(es256_key, rs256_key)
    return jwks_server


def jwks_settings(database_url: str, jwks_url: str, **overrides: Any) -> Settings:
    """Test settings that verify asymmetric tokens with ``jwks_url`` and check iss."""
    values: dict[str, Any] = {
        "jwks_url": jwks_url,
        "jwt_issuer": LOCAL_SUPABASE_ISSUER,
        "jwks_timeout_s": 0.5,
    }
    values.update(overrides)
    return make_settings(database_url, **values)


@pytest.fixture
def auth_settings(database_url: str, jwks: JwksServer) -> Settings:
    """Settings of :func:`jwks_app`."""
    return jwks_settings(database_url, jwks.url)


@pytest.fixture
async def jwks_app(
    auth_settings: Settings, database: Database, ai_providers: AIProviders
) -> AsyncIterator[FastAPI]:
    """The app verifying tokens with the test JWKS and the local issuer."""
    app = create_app(auth_settings)
    async with runtime(app, auth_settings, database, ai=ai_providers):
        yield app


@pytest.fixture
async def jwks_client(jwks_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of :func:`jwks_app` (no credentials)."""
    transport = httpx.ASGITransport(app=jwks_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c
