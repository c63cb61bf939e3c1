"""TokenVerifier: real ES256/RS256/HS256 tokens against a JWKS on 127.0.0.1."""

import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import pytest

from src.domain.errors import (
    AuthenticationError,
    ForbiddenError,
    ServiceUnavailableError,
)
from src.middleware.auth_middleware import (
    JWKS_RETRY_AFTER_FAILURE_S,
    JwksCache,
    TokenVerifier,
    bearer_token,
    parse_jwks,
)
from src.settings import DEV_JWT_SECRET, Settings
from tests.auth.cases import BAD_TOKEN_DESCRIPTIONS, bad_tokens
from tests.auth.conftest import jwks_settings
from tests.auth.jwks import (
    JwksServer,
    SigningKey,
    claims_for,
    unsigned_token,
)
from tests.conftest import make_settings
from tests.support.clock import FakeClock

UNUSED_DB = "postgresql://unused@127.0.0.1:1/unused"
COOLDOWN_S = 30.0
TTL_S = 600.0


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_verifier(
    settings: Settings, http_client: httpx.AsyncClient, clock: FakeClock
) -> TokenVerifier:
    jwks = None
    if settings.resolved_jwks_url:
        jwks = JwksCache(
            http_client=http_client,
            url=settings.resolved_jwks_url,
            ttl_s=TTL_S,
            timeout_s=settings.jwks_timeout_s,
            refetch_cooldown_s=COOLDOWN_S,
            clock=clock,
        )
    return TokenVerifier(settings, jwks)


@pytest.fixture
def verifier(
    jwks: JwksServer, http_client: httpx.AsyncClient, clock: FakeClock
) -> TokenVerifier:
    return make_verifier(jwks_settings(UNUSED_DB, jwks.url), http_client, clock)


async def test_es256_token_from_the_jwks_is_accepted(
    verifier: TokenVerifier, es256_key: SigningKey
) -> None:
    user_id = uuid.uuid4()
    user = await verifier.verify(es256_key.sign(claims_for(user_id)))
    assert user.id == user_id
    assert user.role == "authenticated"
    assert user.email == "someone@example.com"
    assert user.is_anonymous is False
    assert user.claims["sub"] == str(user_id)


async def test_rs256_token_from_the_jwks_is_accepted(
    verifier: TokenVerifier, rs256_key: SigningKey
) -> None:
    user_id = uuid.uuid4()
    user = await verifier.verify(rs256_key.sign(claims_for(user_id)))
    assert user.id == user_id


async def test_hs256_token_is_accepted_without_fetching_keys(
    verifier: TokenVerifier, jwks: JwksServer
) -> None:
    user_id = uuid.uuid4()
    token = jwt.encode(claims_for(user_id), DEV_JWT_SECRET, algorithm="HS256")
    user = await verifier.verify(token)
    assert user.id == user_id
    assert jwks.requests == 0


async def test_keys_are_fetched_once_then_cached(
    verifier: TokenVerifier, jwks: JwksServer, es256_key: SigningKey
) -> None:
    for _ in range(3):
        await verifier.verify(es256_key.sign(claims_for(uuid.uuid4())))
    assert jwks.requests == 1


async def test_cached_keys_are_refetched_after_the_ttl(
    verifier: TokenVerifier,
    jwks: JwksServer,
    es256_key: SigningKey,
    clock: FakeClock,
) -> None:
    await verifier.verify(es256_key.sign(claims_for(uuid.uuid4())))
    clock.advance(TTL_S)
    await verifier.verify(es256_key.sign(claims_for(uuid.uuid4())))
    assert jwks.requests == 2


async def test_a_rotated_key_is_fetched_when_a_token_names_it(
    verifier: TokenVerifier,
    jwks: JwksServer,
    es256_key: SigningKey,
    clock: FakeClock,
) -> None:
    await verifier.verify(es256_key.sign(claims_for(uuid.uuid4())))
    new_key = SigningKey.es256()
    jwks.publish(new_key)
    clock.advance(COOLDOWN_S)

    user_id = uuid.uuid4()
    user = await verifier.verify(new_key.sign(claims_for(user_id)))

    assert user.id == user_id
    assert jwks.requests == 2
    with pytest.raises(AuthenticationError, match="unknown signing key"):
        await verifier.verify(es256_key.sign(claims_for(user_id)))


async def test_a_flood_of_unknown_kids_refetches_at_most_once_per_cooldown(
    verifier: TokenVerifier,
    jwks: JwksServer,
    es256_key: SigningKey,
    clock: FakeClock,
) -> None:
    await verifier.verify(es256_key.sign(claims_for(uuid.uuid4())))
    clock.advance(COOLDOWN_S)
    for _ in range(20):
        token = es256_key.sign(claims_for(uuid.uuid4()), kid=uuid.uuid4().hex)
        with pytest.raises(AuthenticationError, match="unknown signing key"):
            await verifier.verify(token)
    assert jwks.requests == 2


@pytest.mark.parametrize(
    ("configure", "expected_fetches"),
    [
        pytest.param(lambda s: setattr(s, "status", 500), 1, id="http-500"),
        pytest.param(lambda s: setattr(s, "delay_s", 1.0), 1, id="timeout"),
    ],
)
async def test_an_unreachable_jwks_is_503_never_a_pass(
    verifier: TokenVerifier,
    jwks: JwksServer,
    es256_key: SigningKey,
    configure: Callable[[JwksServer], None],
    expected_fetches: int,
) -> None:
    configure(jwks)
    with pytest.raises(ServiceUnavailableError) as caught:
        await verifier.verify(es256_key.sign(claims_for(uuid.uuid4())))
    assert caught.value.status_code == 503
    assert jwks.requests == expected_fetches


async def test_after_a_failed_fetch_requests_fail_fast_then_recover(
    verifier: TokenVerifier,
    jwks: JwksServer,
    es256_key: SigningKey,
    clock: FakeClock,
) -> None:
    jwks.status = 500
    token = es256_key.sign(claims_for(uuid.uuid4()))
    for _ in range(5):
        with pytest.raises(ServiceUnavailableError):
            await verifier.verify(token)
    assert jwks.requests == 1

    jwks.status = 200
    clock.advance(JWKS_RETRY_AFTER_FAILURE_S)
    assert (await verifier.verify(token)).claims == jwt.decode(
        token, options={"verify_signature": False}
    )
    assert jwks.requests == 2


async def test_a_closed_jwks_port_is_503(
    http_client: httpx.AsyncClient, clock: FakeClock, es256_key: SigningKey
) -> None:
    settings = jwks_settings(UNUSED_DB, "http://127.0.0.1:1/jwks.json")
    verifier = make_verifier(settings, http_client, clock)
    with pytest.raises(ServiceUnavailableError):
        await verifier.verify(es256_key.sign(claims_for(uuid.uuid4())))


@pytest.mark.parametrize("case", list(BAD_TOKEN_DESCRIPTIONS))
async def test_invalid_tokens_are_refused_with_a_description(
    verifier: TokenVerifier, es256_key: SigningKey, rs256_key: SigningKey, case: str
) -> None:
    token = bad_tokens(es256_key, rs256_key, uuid.uuid4())[case]
    description = BAD_TOKEN_DESCRIPTIONS[case]
    with pytest.raises(AuthenticationError) as caught:
        await verifier.verify(token)
    assert caught.value.message == description
    assert caught.value.status_code == 401
    assert caught.value.headers["WWW-Authenticate"] == (
        f'Bearer error="invalid_token", error_description="{description}"'
    )


async def test_rs256_is_refused_when_only_hs256_is_configured(
    http_client: httpx.AsyncClient,
    clock: FakeClock,
    jwks: JwksServer,
    rs256_key: SigningKey,
) -> None:
    settings = jwks_settings(UNUSED_DB, jwks.url, jwt_algorithms=["HS256"])
    verifier = make_verifier(settings, http_client, clock)
    with pytest.raises(AuthenticationError, match="algorithm not allowed: RS256"):
        await verifier.verify(rs256_key.sign(claims_for(uuid.uuid4())))
    assert jwks.requests == 0


async def test_none_stays_refused_even_when_configured(
    http_client: httpx.AsyncClient, clock: FakeClock, jwks: JwksServer
) -> None:
    settings = jwks_settings(UNUSED_DB, jwks.url, jwt_algorithms=["none", "HS256"])
    verifier = make_verifier(settings, http_client, clock)
    with pytest.raises(AuthenticationError, match="algorithm not allowed: none"):
        await verifier.verify(unsigned_token(claims_for(uuid.uuid4())))


async def test_asymmetric_tokens_are_refused_without_a_jwks(
    http_client: httpx.AsyncClient, clock: FakeClock, es256_key: SigningKey
) -> None:
    verifier = make_verifier(make_settings_without_jwks(), http_client, clock)
    with pytest.raises(AuthenticationError, match="ES256 tokens are not accepted"):
        await verifier.verify(es256_key.sign(claims_for(uuid.uuid4())))


async def test_hs256_tokens_are_refused_without_a_secret(
    http_client: httpx.AsyncClient, clock: FakeClock
) -> None:
    settings = make_settings_without_jwks(supabase_jwt_secret=None)
    verifier = make_verifier(settings, http_client, clock)
    token = jwt.encode(claims_for(uuid.uuid4()), DEV_JWT_SECRET, algorithm="HS256")
    with pytest.raises(AuthenticationError, match="HS256 tokens are not accepted"):
        await verifier.verify(token)


def make_settings_without_jwks(**overrides: Any) -> Settings:
    return make_settings(UNUSED_DB, **overrides)


@pytest.mark.parametrize("role", ["anon", "service_role", "supabase_admin"])
async def test_a_valid_token_of_another_role_is_forbidden(
    verifier: TokenVerifier, es256_key: SigningKey, role: str
) -> None:
    with pytest.raises(ForbiddenError) as caught:
        await verifier.verify(es256_key.sign(claims_for(uuid.uuid4(), role=role)))
    assert caught.value.status_code == 403
    assert role in caught.value.message


async def test_anonymous_users_are_refused_by_default(
    verifier: TokenVerifier, es256_key: SigningKey
) -> None:
    token = es256_key.sign(claims_for(uuid.uuid4(), is_anonymous=True))
    with pytest.raises(ForbiddenError, match="anonymous"):
        await verifier.verify(token)


async def test_anonymous_users_are_accepted_when_allowed(
    http_client: httpx.AsyncClient,
    clock: FakeClock,
    jwks: JwksServer,
    es256_key: SigningKey,
) -> None:
    settings = jwks_settings(UNUSED_DB, jwks.url, allow_anonymous_users=True)
    verifier = make_verifier(settings, http_client, clock)
    token = es256_key.sign(claims_for(uuid.uuid4(), is_anonymous=True, email=""))
    user = await verifier.verify(token)
    assert user.is_anonymous is True
    assert user.email is None


async def test_leeway_accepts_a_token_that_just_expired(
    verifier: TokenVerifier, es256_key: SigningKey
) -> None:
    now = int(time.time())
    token = es256_key.sign(claims_for(uuid.uuid4(), exp=now - 5, iat=now - 3605))
    user = await verifier.verify(token)
    assert user.claims["exp"] == now - 5


def test_unusable_jwks_entries_are_skipped(es256_key: SigningKey) -> None:
    keys = parse_jwks(
        {
            "keys": [
                {"kty": "oct-unknown", "kid": "x"},
                {**es256_key.public_jwk(), "kid": None},
                es256_key.public_jwk(),
                "not-a-key",
            ]
        }
    )
    assert list(keys) == [es256_key.kid]
    assert parse_jwks(["not", "a", "document"]) == {}


@pytest.mark.parametrize(
    ("header", "description"),
    [
        (None, "missing bearer token"),
        ("", "missing bearer token"),
        ("Basic dXNlcjpwYXNz", "authorization scheme must be Bearer"),
        ("Token abc", "authorization scheme must be Bearer"),
        ("Bearer", "empty bearer token"),
        ("Bearer    ", "empty bearer token"),
        ("Bearer a b", "malformed token"),
    ],
)
def test_bearer_header_problems_are_described(
    header: str | None, description: str
) -> None:
    with pytest.raises(AuthenticationError) as caught:
        bearer_token(header)
    assert caught.value.message == description


@pytest.mark.parametrize("header", ["Bearer abc.def.ghi", "bearer abc.def.ghi"])
def test_bearer_token_is_extracted(header: str) -> None:
    assert bearer_token(header) == "abc.def.ghi"
