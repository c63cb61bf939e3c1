"""Authentication through HTTP: status, WWW-Authenticate, body, and no writes."""

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from src.app import create_app
from src.infra.ai_providers import AIProviders
from src.infra.db_client import Database
from src.runtime import runtime
from tests.auth.cases import BAD_TOKEN_DESCRIPTIONS, bad_tokens
from tests.auth.conftest import jwks_settings
from tests.auth.jwks import JwksServer, SigningKey, claims_for
from tests.factories import auth_headers, create_user, mint_token


async def general_user_exists(connection: AsyncConnection, user_id: uuid.UUID) -> bool:
    row = await connection.execute(
        text(
            "select exists (select 1 from general_users where id = :id) "
            "or exists (select 1 from user_profiles where user_id = :id)"
        ),
        {"id": user_id},
    )
    return bool(row.scalar_one())


@pytest.fixture
async def pre_trigger_user(connection: AsyncConnection) -> uuid.UUID:
    """An auth user without ``general_users`` row (signed up before the trigger)."""
    user_id = await create_user(connection)
    await connection.execute(
        text("delete from general_users where id = :id"), {"id": user_id}
    )
    assert not await general_user_exists(connection, user_id)
    return user_id


def assert_invalid_token(response: httpx.Response, description: str) -> None:
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer error="invalid_token", error_description="{description}"'
    )
    body = response.json()
    assert body["error"] == "invalid_token"
    assert body["message"] == description


async def test_a_first_request_creates_the_general_user_and_profile(
    jwks_client: httpx.AsyncClient,
    connection: AsyncConnection,
    pre_trigger_user: uuid.UUID,
    es256_key: SigningKey,
) -> None:
    token = es256_key.sign(claims_for(pre_trigger_user))
    response = await jwks_client.get("/api/me", headers=auth_headers(token))
    assert response.status_code == 200
    assert response.json()["id"] == str(pre_trigger_user)
    assert await general_user_exists(connection, pre_trigger_user)


@pytest.mark.parametrize("case", list(BAD_TOKEN_DESCRIPTIONS))
async def test_an_invalid_token_is_401_with_its_reason_and_writes_nothing(
    *,
    jwks_client: httpx.AsyncClient,
    connection: AsyncConnection,
    pre_trigger_user: uuid.UUID,
    es256_key: SigningKey,
    rs256_key: SigningKey,
    case: str,
) -> None:
    token = bad_tokens(es256_key, rs256_key, pre_trigger_user)[case]
    response = await jwks_client.get("/api/me", headers=auth_headers(token))
    assert_invalid_token(response, BAD_TOKEN_DESCRIPTIONS[case])
    assert not await general_user_exists(connection, pre_trigger_user)


@pytest.mark.parametrize(
    ("headers", "description"),
    [
        ({}, "missing bearer token"),
        ({"Authorization": ""}, "missing bearer token"),
        ({"Authorization": "Bearer"}, "empty bearer token"),
        ({"Authorization": "Bearer "}, "empty bearer token"),
        (
            {"Authorization": "Basic dXNlcjpwYXNz"},
            "authorization scheme must be Bearer",
        ),
        ({"Authorization": "Bearer \x01\x02garbage"}, "malformed token"),
        ({"Authorization": "Bearer two tokens"}, "malformed token"),
    ],
)
async def test_a_missing_or_malformed_header_is_401(
    jwks_client: httpx.AsyncClient, headers: dict[str, str], description: str
) -> None:
    response = await jwks_client.get("/api/me", headers=headers)
    assert_invalid_token(response, description)


async def test_a_token_for_a_user_not_in_auth_users_is_401_unknown_user(
    jwks_client: httpx.AsyncClient,
    connection: AsyncConnection,
    es256_key: SigningKey,
) -> None:
    stranger = uuid.uuid4()
    token = es256_key.sign(claims_for(stranger))
    response = await jwks_client.get("/api/me", headers=auth_headers(token))
    assert_invalid_token(response, "unknown user")
    assert not await general_user_exists(connection, stranger)


async def test_a_valid_token_of_another_role_is_403_and_writes_nothing(
    jwks_client: httpx.AsyncClient,
    connection: AsyncConnection,
    pre_trigger_user: uuid.UUID,
    es256_key: SigningKey,
) -> None:
    token = es256_key.sign(claims_for(pre_trigger_user, role="service_role"))
    response = await jwks_client.get("/api/me", headers=auth_headers(token))
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert not await general_user_exists(connection, pre_trigger_user)


async def test_an_anonymous_user_is_403_by_default(
    jwks_client: httpx.AsyncClient,
    connection: AsyncConnection,
    pre_trigger_user: uuid.UUID,
    es256_key: SigningKey,
) -> None:
    token = es256_key.sign(claims_for(pre_trigger_user, is_anonymous=True))
    response = await jwks_client.get("/api/me", headers=auth_headers(token))
    assert response.status_code == 403
    assert "anonymous" in response.json()["message"]
    assert not await general_user_exists(connection, pre_trigger_user)


@pytest.fixture
async def anonymous_client(
    database_url: str, jwks: JwksServer, database: Database, ai_providers: AIProviders
) -> AsyncIterator[httpx.AsyncClient]:
    settings = jwks_settings(database_url, jwks.url, allow_anonymous_users=True)
    app = create_app(settings)
    async with runtime(app, settings, database, ai=ai_providers):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            yield c


async def test_an_anonymous_user_is_served_when_allowed(
    anonymous_client: httpx.AsyncClient,
    connection: AsyncConnection,
    es256_key: SigningKey,
) -> None:
    user_id = uuid.uuid4()
    await connection.execute(
        text(
            "insert into auth.users (id, is_anonymous, aud, role) "
            "values (:id, true, 'authenticated', 'authenticated')"
        ),
        {"id": user_id},
    )
    token = es256_key.sign(claims_for(user_id, is_anonymous=True, email=""))
    response = await anonymous_client.get("/api/me", headers=auth_headers(token))
    assert response.status_code == 200
    assert response.json()["email"] is None


async def test_an_unreachable_jwks_is_503_and_writes_nothing(
    jwks_client: httpx.AsyncClient,
    jwks: JwksServer,
    connection: AsyncConnection,
    pre_trigger_user: uuid.UUID,
    es256_key: SigningKey,
) -> None:
    jwks.status = 503
    token = es256_key.sign(claims_for(pre_trigger_user))
    response = await jwks_client.get("/api/me", headers=auth_headers(token))
    assert response.status_code == 503
    assert response.json()["error"] == "service_unavailable"
    assert response.headers["retry-after"] == "5"
    assert not await general_user_exists(connection, pre_trigger_user)


async def test_hs256_keeps_working_while_the_jwks_is_down(
    jwks_client: httpx.AsyncClient, jwks: JwksServer, user: uuid.UUID
) -> None:
    jwks.status = 500
    response = await jwks_client.get("/api/me", headers=auth_headers(mint_token(user)))
    assert response.status_code == 200


async def test_known_users_are_not_checked_again_within_the_ttl(
    auth_client: httpx.AsyncClient, connection: AsyncConnection, user: uuid.UUID
) -> None:
    assert (await auth_client.get("/api/me")).status_code == 200
    # Remove the row behind the cache's back: a second check would recreate it.
    await connection.execute(
        text("delete from general_users where id = :id"), {"id": user}
    )
    response = await auth_client.get("/api/me")
    assert response.status_code == 404
    assert not await general_user_exists(connection, user)


async def test_openapi_declares_the_bearer_scheme(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert schema["paths"]["/api/me"]["get"]["security"] == [{"HTTPBearer": []}]
