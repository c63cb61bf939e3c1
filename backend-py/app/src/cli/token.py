"""``make token EMAIL=alice@example.com``: act as a user without Supabase Auth.

Creates the user in ``auth.users`` when missing (the signup trigger then creates
``general_users``), through Supabase Auth's admin API when ``SUPABASE_URL`` and
``SUPABASE_SERVICE_ROLE_KEY`` are set, else directly in the database (the
embedded one, or ``DATABASE_URL``), and prints an access token with Supabase's
claims as the last line of stdout; progress goes to stderr. Signs with the
development HS256 secret, or with ES256 when ``DEV_JWT_PRIVATE_KEY_PATH`` names
a P-256 private key (PEM); ``--jwks`` prints that key's public JWKS, to serve at
``JWKS_URL``.
Refuses to run when ``ENVIRONMENT=production``.
"""

import argparse
import asyncio
import json
import sys
import time
import uuid
from typing import Any

import jwt
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from src.infra.db_client import create_engine, prepare_embedded
from src.infra.dev_signing_key import load_private_key, public_jwk
from src.infra.supabase_client import SupabaseAdmin
from src.settings import Settings, get_settings

LOCAL_SUPABASE_ISSUER = "http://127.0.0.1:54321/auth/v1"
"""The ``iss`` of the Supabase CLI's local stack, used when none is configured."""

_INSERT_AUTH_USER = text(
    """
    insert into auth.users (
      instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
      raw_app_meta_data, raw_user_meta_data, created_at, updated_at,
      confirmation_token, recovery_token, email_change_token_new, email_change
    )
    select
      '00000000-0000-0000-0000-000000000000', :id, 'authenticated',
      'authenticated', cast(:email as text), '', now(),
      '{"provider": "email", "providers": ["email"]}', '{}', now(), now(),
      '', '', '', ''
    where not exists (select 1 from auth.users u where u.email = cast(:email as text))
    """
)
_SELECT_AUTH_USER = text("select id from auth.users where email = :email")


async def ensure_auth_user(
    connection: AsyncConnection | AsyncSession, email: str
) -> uuid.UUID:
    """The id of the ``auth.users`` row with ``email``, inserted when missing.

    Fills the columns GoTrue reads as strings, so a Supabase stack (`supabase
    start`) can also serve this user.
    """
    email = email.strip().lower()
    await connection.execute(_INSERT_AUTH_USER, {"id": uuid.uuid4(), "email": email})
    result = await connection.execute(_SELECT_AUTH_USER, {"email": email})
    return uuid.UUID(str(result.scalar_one()))


def supabase_claims(
    user_id: uuid.UUID,
    *,
    email: str | None,
    expires_in: int,
    issuer: str = LOCAL_SUPABASE_ISSUER,
) -> dict[str, Any]:
    """The claims Supabase Auth puts in an access token for a password sign-in."""
    now = int(time.time())
    return {
        "iss": issuer,
        "sub": str(user_id),
        "aud": "authenticated",
        "exp": now + expires_in,
        "iat": now,
        "email": email or "",
        "phone": "",
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": {},
        "role": "authenticated",
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": now}],
        "session_id": str(uuid.uuid4()),
        "is_anonymous": False,
    }


def sign(claims: dict[str, Any], settings: Settings) -> str:
    """Sign with the ES256 key when configured, else with the HS256 secret.

    Raises:
        ValueError: Neither a key nor a secret is configured.
    """
    key = load_private_key(settings)
    if key is not None:
        kid = public_jwk(key)["kid"]
        return jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid})
    if settings.supabase_jwt_secret is None:
        raise ValueError("set SUPABASE_JWT_SECRET or DEV_JWT_PRIVATE_KEY_PATH")
    secret = settings.supabase_jwt_secret.get_secret_value()
    return jwt.encode(claims, secret, algorithm="HS256")


async def ensure_user_in_database(
    settings: Settings, database_url: str, email: str
) -> uuid.UUID:
    """Ensure the user exists in the database at ``database_url``."""
    engine = create_engine(database_url, settings)
    try:
        async with engine.begin() as connection:
            return await ensure_auth_user(connection, email)
    finally:
        await engine.dispose()


def ensure_user(settings: Settings, email: str) -> uuid.UUID:
    """Through Supabase Auth's admin API when configured, else in the database."""
    admin = SupabaseAdmin.from_settings(settings)
    if admin is not None:
        print(f"Supabase Auth admin API: {settings.supabase_url}", file=sys.stderr)
        return admin.ensure_user(email)
    url = database_url_of(settings)
    return asyncio.run(ensure_user_in_database(settings, url, email))


def issue_token(settings: Settings, email: str) -> str:
    """Ensure the user exists and mint their access token."""
    email = email.strip().lower()
    user_id = ensure_user(settings, email)
    print(f"user {email}: {user_id}", file=sys.stderr)
    claims = supabase_claims(
        user_id,
        email=email,
        expires_in=settings.dev_token_ttl_s,
        issuer=settings.expected_issuer or LOCAL_SUPABASE_ISSUER,
    )
    return sign(claims, settings)


def database_url_of(settings: Settings) -> str:
    """``DATABASE_URL``, or the embedded server's (joined or started)."""
    if settings.database_url:
        return settings.database_url
    print(f"embedded database: {settings.embedded_db_path}", file=sys.stderr)
    return prepare_embedded(settings).url()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line: ``--email`` or ``--jwks``."""
    parser = argparse.ArgumentParser(
        prog="make token", description="Mint a development access token."
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--email", help="the user to act as (created if missing)")
    action.add_argument(
        "--jwks", action="store_true", help="print the ES256 key's public JWKS"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, settings: Settings | None = None) -> int:
    """Run the command; the token (or JWKS) is the last line of stdout.

    Returns:
        The exit status.
    """
    args = parse_args(argv)
    try:
        settings = settings or get_settings()
    except ValidationError as exc:
        print(
            f"make token: invalid settings: {exc.errors()[0]['msg']}", file=sys.stderr
        )
        return 2
    if settings.environment == "production":
        print("make token refuses to run with ENVIRONMENT=production", file=sys.stderr)
        return 2
    if args.jwks:
        return print_jwks(settings)
    if "@" not in args.email:
        print(f"not an email address: {args.email!r}", file=sys.stderr)
        return 2
    print(issue_token(settings, args.email))
    return 0


def print_jwks(settings: Settings) -> int:
    """Print the public JWKS of ``DEV_JWT_PRIVATE_KEY_PATH``."""
    key = load_private_key(settings)
    if key is None:
        print("DEV_JWT_PRIVATE_KEY_PATH is not set", file=sys.stderr)
        return 2
    print(json.dumps({"keys": [public_jwk(key)]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
