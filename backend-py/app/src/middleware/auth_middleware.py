"""Supabase access-token verification, local and without a round trip per request.

Asymmetric tokens (ES256, RS256) are checked against the project's JWKS, fetched
once and cached; legacy HS256 tokens against ``SUPABASE_JWT_SECRET``. The key is
chosen by the family of the header's ``alg``, so an HS256 token is never checked
against a public key and an asymmetric token never against the shared secret.
"""

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from jwt import PyJWK
from jwt.exceptions import PyJWKError

from src.domain.entity.user import CurrentUser
from src.domain.errors import (
    AuthenticationError,
    ForbiddenError,
    ServiceUnavailableError,
)
from src.infra.dev_signing_key import load_private_key, public_jwk
from src.settings import Settings

logger = logging.getLogger(__name__)

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
"""Algorithms verified with the shared secret; every other one uses the JWKS."""

AUTHENTICATED_ROLE = "authenticated"

UNKNOWN_KID_REFETCH_COOLDOWN_S = 30.0
"""Minimum time between JWKS refetches caused by a token naming an unknown kid."""

JWKS_RETRY_AFTER_FAILURE_S = 5.0
"""After a failed JWKS fetch, requests get 503 at once for this long."""

_FAILURE_MESSAGES: tuple[tuple[type[jwt.InvalidTokenError], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.DecodeError, "malformed token"),
)


def describe_failure(exc: jwt.InvalidTokenError) -> str:
    """A short sentence for the ``error_description`` of a rejected token."""
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"missing claim: {exc.claim}"
    for error_type, message in _FAILURE_MESSAGES:
        if isinstance(exc, error_type):
            return message
    return f"invalid token: {exc}"


@dataclass(kw_only=True)
class JwksCache:
    """The project's public signing keys, fetched over HTTP and cached.

    Keys are refetched when the cache is older than ``ttl_s``, and when a token
    names a ``kid`` the cache does not hold (key rotation) at most once per
    ``refetch_cooldown_s``, so a flood of random kids cannot hammer the endpoint.
    When a fetch fails, requests are refused (503) without another attempt for
    ``retry_after_s``.
    """

    http_client: httpx.AsyncClient
    url: str
    ttl_s: float
    timeout_s: float
    refetch_cooldown_s: float = UNKNOWN_KID_REFETCH_COOLDOWN_S
    retry_after_s: float = JWKS_RETRY_AFTER_FAILURE_S
    clock: Callable[[], float] = time.monotonic
    _keys: dict[str, PyJWK] = field(default_factory=dict, init=False)
    _fetched_at: float | None = field(default=None, init=False)
    _failed_at: float | None = field(default=None, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    async def key(self, kid: str) -> PyJWK | None:
        """The key with this ``kid``, or None when the JWKS does not publish it.

        Raises:
            ServiceUnavailableError: The JWKS endpoint could not be read.
        """
        async with self._lock:
            if self._is_stale() or self._may_refetch_for(kid):
                await self._refresh()
            return self._keys.get(kid)

    async def _refresh(self) -> None:
        # After a failure, answer 503 at once for a while: requests queued on
        # the lock must not each wait for the timeout again.
        failed_at = self._failed_at
        if failed_at is not None and self.clock() - failed_at < self.retry_after_s:
            raise _keys_unavailable()
        try:
            self._keys = await self._fetch()
        except ServiceUnavailableError:
            self._failed_at = self.clock()
            raise
        self._fetched_at, self._failed_at = self.clock(), None

    def _is_stale(self) -> bool:
        return self._fetched_at is None or (
            self.clock() - self._fetched_at >= self.ttl_s
        )

    def _may_refetch_for(self, kid: str) -> bool:
        assert self._fetched_at is not None  # noqa: S101 - set by the first fetch
        cooled_down = self.clock() - self._fetched_at >= self.refetch_cooldown_s
        return kid not in self._keys and cooled_down

    async def _fetch(self) -> dict[str, PyJWK]:
        try:
            response = await self.http_client.get(self.url, timeout=self.timeout_s)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("JWKS fetch failed: %s", type(exc).__name__)
            raise _keys_unavailable() from exc
        return parse_jwks(document)


def _keys_unavailable() -> ServiceUnavailableError:
    return ServiceUnavailableError(
        "The signing keys could not be fetched; try again shortly.",
        headers={"Retry-After": str(round(JWKS_RETRY_AFTER_FAILURE_S))},
    )


def parse_jwks(document: Any) -> dict[str, PyJWK]:
    """The usable keys of a JWKS document by ``kid`` (others are skipped)."""
    raw_keys = document.get("keys") if isinstance(document, dict) else None
    keys: dict[str, PyJWK] = {}
    entries = raw_keys if isinstance(raw_keys, list) else []
    for raw_key in (entry for entry in entries if isinstance(entry, dict)):
        try:
            key = PyJWK(raw_key)
        except (PyJWKError, jwt.InvalidKeyError, TypeError, ValueError, KeyError):
            logger.warning("skipping an unusable JWKS key")
            continue
        if key.key_id:
            keys[key.key_id] = key
    return keys


def parse_user_id(sub: object) -> uuid.UUID:
    """The ``sub`` claim as a UUID; only the canonical lower-case form is taken."""
    try:
        user_id = uuid.UUID(str(sub))
    except ValueError as exc:
        raise AuthenticationError("sub is not a UUID") from exc
    if str(user_id) != sub:
        raise AuthenticationError("sub is not a UUID")
    return user_id


def dev_public_keys(settings: Settings) -> dict[str, PyJWK]:
    """The development signing key's public JWK by ``kid`` (empty when unset)."""
    private_key = load_private_key(settings)
    if private_key is None:
        return {}
    jwk = public_jwk(private_key)
    return {jwk["kid"]: PyJWK(jwk)}


VERIFIED_TOKEN_TTL_S = 60.0
"""How long a verified token is trusted without checking its signature again."""
VERIFIED_TOKEN_MAX_ENTRIES = 4096


class VerifiedTokens:
    """Tokens verified recently, so each request of a session is not re-verified.

    A client sends the same access token with every request; checking its
    signature each time is most of what authentication costs. An entry lasts
    until the token expires (``exp`` plus the leeway), and at most ``ttl_s``,
    so a signing key withdrawn from the JWKS stops being trusted within
    ``ttl_s``. Bounded: when full, the oldest entry is dropped.
    """

    def __init__(
        self,
        *,
        ttl_s: float = VERIFIED_TOKEN_TTL_S,
        max_entries: int = VERIFIED_TOKEN_MAX_ENTRIES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[CurrentUser, float]] = OrderedDict()

    def get(self, token: str) -> CurrentUser | None:
        """The user of a token verified earlier, while that still holds."""
        entry = self._entries.get(token)
        if entry is None:
            return None
        user, valid_until = entry
        if valid_until <= self._clock():
            del self._entries[token]
            return None
        return user

    def add(self, token: str, user: CurrentUser, *, expires_at: float) -> None:
        """Remember a verified token until ``expires_at`` (epoch seconds)."""
        valid_until = min(expires_at, self._clock() + self._ttl_s)
        self._entries[token] = (user, valid_until)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)


class TokenVerifier:
    """Turns a bearer token into a :class:`CurrentUser`, or refuses it.

    Built once at start-up; verification is local (the JWKS is cached), and a
    token verified once is trusted for a short while (:class:`VerifiedTokens`).
    """

    def __init__(
        self,
        settings: Settings,
        jwks: JwksCache | None,
        local_keys: Mapping[str, PyJWK] | None = None,
        verified: VerifiedTokens | None = None,
    ) -> None:
        self._settings = settings
        self._jwks = jwks
        self._local_keys = dict(local_keys or {})
        self._algorithms = frozenset(settings.jwt_algorithms) - {"none"}
        self._verified = verified if verified is not None else VerifiedTokens()

    @classmethod
    def from_settings(
        cls, settings: Settings, http_client: httpx.AsyncClient
    ) -> "TokenVerifier":
        """A verifier using the JWKS of ``settings`` (when one is configured).

        The public half of ``DEV_JWT_PRIVATE_KEY_PATH`` (development only) is
        trusted locally, so ``make token``'s ES256 tokens need no JWKS server.
        """
        url = settings.resolved_jwks_url
        jwks = None
        if url:
            jwks = JwksCache(
                http_client=http_client,
                url=url,
                ttl_s=settings.jwks_cache_ttl_s,
                timeout_s=settings.jwks_timeout_s,
            )
        return cls(settings, jwks, dev_public_keys(settings))

    async def verify(self, token: str) -> CurrentUser:
        """Verify the token's signature and claims.

        Raises:
            AuthenticationError: The token is invalid (401).
            ForbiddenError: The token is valid but its role may not use the API.
            ServiceUnavailableError: The JWKS endpoint could not be read (503).
        """
        known = self._verified.get(token)
        if known is not None:
            return known
        header = self._header(token)
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self._algorithms:
            raise AuthenticationError(f"algorithm not allowed: {algorithm}")
        key = await self._key_for(algorithm, header.get("kid"))
        claims = self._decode(token, key, algorithm)
        user = self._current_user(claims)
        expires_at = float(claims["exp"]) + self._settings.jwt_leeway_s
        self._verified.add(token, user, expires_at=expires_at)
        return user

    @staticmethod
    def _header(token: str) -> dict[str, Any]:
        try:
            return jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError("malformed token") from exc

    async def _key_for(self, algorithm: str, kid: object) -> PyJWK | str:
        if algorithm in HMAC_ALGORITHMS:
            return self._secret(algorithm)
        kid = kid if isinstance(kid, str) else None
        key = self._local_keys.get(kid) if kid is not None else None
        if key is None:
            key = await self._published_key(algorithm, kid)
        if key is None or key.algorithm_name != algorithm:
            raise AuthenticationError("unknown signing key")
        return key

    def _secret(self, algorithm: str) -> str:
        secret = self._settings.supabase_jwt_secret
        if secret is None:
            raise AuthenticationError(f"{algorithm} tokens are not accepted")
        return secret.get_secret_value()

    async def _published_key(self, algorithm: str, kid: str | None) -> PyJWK | None:
        if self._jwks is None:
            raise AuthenticationError(f"{algorithm} tokens are not accepted")
        return await self._jwks.key(kid) if kid is not None else None

    def _decode(self, token: str, key: PyJWK | str, algorithm: str) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key=key,
                algorithms=[algorithm],
                audience=self._settings.jwt_audience,
                issuer=self._settings.expected_issuer,
                leeway=self._settings.jwt_leeway_s,
                options={"require": ["exp", "sub", "role"]},
            )
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError(describe_failure(exc)) from exc

    def _current_user(self, claims: Mapping[str, Any]) -> CurrentUser:
        user_id = parse_user_id(claims["sub"])
        role = claims["role"]
        if role != AUTHENTICATED_ROLE:
            raise ForbiddenError(f"role {role!r} may not use this API")
        is_anonymous = claims.get("is_anonymous") is True
        if is_anonymous and not self._settings.allow_anonymous_users:
            raise ForbiddenError("anonymous sign-ins may not use this API")
        email = claims.get("email")
        return CurrentUser(
            id=user_id,
            email=email if isinstance(email, str) and email else None,
            role=role,
            is_anonymous=is_anonymous,
            claims=dict(claims),
        )


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header value.

    Raises:
        AuthenticationError: The header is missing, not Bearer, or empty.
    """
    if authorization is None or not authorization.strip():
        raise AuthenticationError("missing bearer token")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise AuthenticationError("authorization scheme must be Bearer")
    token = token.strip()
    if not token:
        raise AuthenticationError("empty bearer token")
    if " " in token:
        raise AuthenticationError("malformed token")
    return token
