"""Reusable test data: users in ``auth.users``, rooms and Supabase-like tokens."""

import uuid
from typing import Any

import jwt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from src.cli.token import ensure_auth_user, supabase_claims
from src.settings import DEV_JWT_SECRET


async def create_user(
    connection_or_session: AsyncConnection | AsyncSession, email: str | None = None
) -> uuid.UUID:
    """Insert a user into ``auth.users``; the signup trigger adds ``general_users``.

    Args:
        connection_or_session: Where to insert (the test's rolled-back connection).
        email: The user's email; a unique one when omitted.

    Returns:
        The new user's id.
    """
    email = email or f"user-{uuid.uuid4().hex[:12]}@example.com"
    return await ensure_auth_user(connection_or_session, email)


async def create_room(
    connection: AsyncConnection, owner: uuid.UUID, title: str = "Room"
) -> int:
    """A chat room with its owner as member, in the connection's current role.

    As the service by default; after ``set_config('role', 'authenticated')``
    with the owner's claims, the insert goes through their RLS policies.
    """
    room = (
        await connection.execute(
            text(
                "insert into public.chat_rooms (title, created_by) "
                "values (:title, :owner) returning id"
            ),
            {"title": title, "owner": owner},
        )
    ).scalar_one()
    await add_member(connection, int(room), owner, role="owner")
    return int(room)


async def add_member(
    connection: AsyncConnection, room: int, user: uuid.UUID, role: str = "member"
) -> None:
    """Add a user to a room, in the connection's current role."""
    await connection.execute(
        text(
            "insert into public.user_chats (chat_room_id, user_id, role) "
            "values (:room, :user, :role)"
        ),
        {"room": room, "user": user, "role": role},
    )


def mint_token(
    user_id: uuid.UUID,
    *,
    email: str | None = None,
    secret: str = DEV_JWT_SECRET,
    expires_in: int = 3600,
    **claims: Any,
) -> str:
    """An HS256 access token with the claims Supabase Auth issues.

    Args:
        user_id: The ``sub``.
        email: The ``email`` claim.
        secret: The HS256 secret (the development default).
        expires_in: Seconds until ``exp`` (negative for an expired token).
        **claims: Claims to add or override (``aud="other"``, ``role="anon"``).

    Returns:
        The encoded token.
    """
    payload = supabase_claims(user_id, email=email, expires_in=expires_in)
    payload.update(claims)
    return jwt.encode(payload, secret, algorithm="HS256")


def auth_headers(token: str) -> dict[str, str]:
    """The ``Authorization`` header carrying ``token``."""
    return {"Authorization": f"Bearer {token}"}
