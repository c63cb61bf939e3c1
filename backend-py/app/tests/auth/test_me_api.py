"""GET and PATCH /api/me."""

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.factories import create_user


async def account_name_of(connection: AsyncConnection, user_id: uuid.UUID) -> str:
    row = await connection.execute(
        text("select account_name from general_users where id = :id"), {"id": user_id}
    )
    return str(row.scalar_one())


async def create_persona(connection: AsyncConnection, owner: uuid.UUID | None) -> int:
    row = await connection.execute(
        text(
            "insert into virtual_users (owner_id, name, system_prompt) "
            "values (:owner, 'p', 'be brief') returning id"
        ),
        {"owner": owner},
    )
    return int(row.scalar_one())


async def test_me_returns_the_general_user_and_profile(
    connection: AsyncConnection, user: uuid.UUID, auth_client: httpx.AsyncClient
) -> None:
    response = await auth_client.get("/api/me")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(user)
    assert body["email"] == await connection.scalar(
        text("select email from auth.users where id = :id"), {"id": user}
    )
    assert body["account_name"] == await account_name_of(connection, user)
    assert body["profile"] == {
        "default_virtual_user_id": None,
        "preferred_language": None,
        "bio": None,
        "settings": {},
    }


async def test_me_requires_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/me")
    assert response.status_code == 401


async def test_patch_saves_names_avatar_and_profile(
    connection: AsyncConnection, user: uuid.UUID, auth_client: httpx.AsyncClient
) -> None:
    persona = await create_persona(connection, user)
    changes: dict[str, Any] = {
        "display_name": "  Alice Liddell ",
        "account_name": "Alice_L",
        "avatar_url": "https://example.com/a.png",
        "default_virtual_user_id": persona,
        "preferred_language": "ja",
        "bio": "Curious.",
        "settings": {"theme": "dark"},
    }
    response = await auth_client.patch("/api/me", json=changes)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["display_name"] == "Alice Liddell"
    assert body["account_name"] == "alice_l"
    assert body["avatar_url"] == "https://example.com/a.png"
    assert body["profile"] == {
        "default_virtual_user_id": persona,
        "preferred_language": "ja",
        "bio": "Curious.",
        "settings": {"theme": "dark"},
    }
    assert await account_name_of(connection, user) == "alice_l"
    assert (await auth_client.get("/api/me")).json() == body


async def test_patch_changes_only_the_fields_sent_and_null_clears(
    auth_client: httpx.AsyncClient,
) -> None:
    await auth_client.patch("/api/me", json={"bio": "hello", "display_name": "Al"})
    response = await auth_client.patch("/api/me", json={"bio": None})
    assert response.status_code == 200
    assert response.json()["profile"]["bio"] is None
    assert response.json()["display_name"] == "Al"


async def test_a_taken_account_name_is_409(
    connection: AsyncConnection, user: uuid.UUID, auth_client: httpx.AsyncClient
) -> None:
    other = await create_user(connection)
    taken = await account_name_of(connection, other)
    before = await account_name_of(connection, user)

    response = await auth_client.patch(
        "/api/me", json={"account_name": taken, "display_name": "Not Saved"}
    )

    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    assert taken in response.json()["message"]
    assert await account_name_of(connection, user) == before


async def test_keeping_ones_own_account_name_is_fine(
    connection: AsyncConnection, user: uuid.UUID, auth_client: httpx.AsyncClient
) -> None:
    own = await account_name_of(connection, user)
    response = await auth_client.patch("/api/me", json={"account_name": own})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"account_name": "ab"}, "account_name"),
        ({"account_name": "has space"}, "account_name"),
        ({"account_name": "x" * 33}, "account_name"),
        ({"account_name": "émile"}, "account_name"),
        ({"account_name": None}, "account_name"),
        ({"display_name": "   "}, "display_name"),
        ({"display_name": None}, "display_name"),
        ({"avatar_url": "javascript:alert(1)"}, "avatar_url"),
        ({"preferred_language": "english please"}, "preferred_language"),
        ({"settings": None}, "settings"),
        ({"settings": ["not", "an", "object"]}, "settings"),
        ({"default_virtual_user_id": 0}, "default_virtual_user_id"),
        ({"is_admin": True}, "is_admin"),
    ],
)
async def test_invalid_changes_are_422(
    auth_client: httpx.AsyncClient, changes: dict[str, Any], field: str
) -> None:
    response = await auth_client.patch("/api/me", json=changes)
    assert response.status_code == 422
    assert field in response.text


async def test_the_account_name_rule_is_explained(
    auth_client: httpx.AsyncClient,
) -> None:
    response = await auth_client.patch("/api/me", json={"account_name": "a!"})
    assert "3-32 characters of a-z, 0-9 and _" in response.json()["message"]


async def test_another_users_persona_cannot_be_the_default(
    connection: AsyncConnection, auth_client: httpx.AsyncClient
) -> None:
    stranger = await create_user(connection)
    their_persona = await create_persona(connection, stranger)
    response = await auth_client.patch(
        "/api/me", json={"default_virtual_user_id": their_persona}
    )
    assert response.status_code == 422
    assert "default_virtual_user_id" in response.json()["message"]


async def test_an_admin_persona_can_be_the_default(
    connection: AsyncConnection, auth_client: httpx.AsyncClient
) -> None:
    admin_persona = await create_persona(connection, None)
    response = await auth_client.patch(
        "/api/me", json={"default_virtual_user_id": admin_persona}
    )
    assert response.status_code == 200
    assert response.json()["profile"]["default_virtual_user_id"] == admin_persona


async def test_me_without_a_profile_row_shows_defaults(
    connection: AsyncConnection, user: uuid.UUID, auth_client: httpx.AsyncClient
) -> None:
    assert (await auth_client.get("/api/me")).status_code == 200
    # Gone after the user was checked (a new check would recreate it).
    await connection.execute(
        text("delete from user_profiles where user_id = :id"), {"id": user}
    )
    response = await auth_client.get("/api/me")
    assert response.status_code == 200
    assert response.json()["profile"]["settings"] == {}
    patch = await auth_client.patch("/api/me", json={"bio": "x"})
    assert patch.status_code == 404
