"""A token whose user was deleted is 401 "unknown user" at once.

The user's id is known to the API (an earlier request provisioned and cached
it), then the ``auth.users`` row goes: the next request must not write with a
dangling id (a foreign-key violation, 500) but answer 401.
"""

import uuid

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


async def delete_auth_user(connection: AsyncConnection, user_id: uuid.UUID) -> None:
    await connection.execute(
        text("delete from auth.users where id = :id"), {"id": user_id}
    )


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/chat-rooms", {"title": "after deletion"}),
        ("/api/chat", {"message": "am I still here?"}),
        ("/api/documents", {"content": "notes", "title": "after deletion"}),
    ],
)
async def test_the_first_request_after_deletion_is_401_unknown_user(
    connection: AsyncConnection,
    user: uuid.UUID,
    auth_client: httpx.AsyncClient,
    path: str,
    body: dict[str, str],
) -> None:
    known = await auth_client.get("/api/chat-rooms")
    await delete_auth_user(connection, user)

    refused = await auth_client.post(path, json=body)
    again = await auth_client.get("/api/chat-rooms")

    assert known.status_code == 200
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"] == "invalid_token"
    assert refused.json()["message"] == "unknown user"
    assert again.status_code == 401


async def test_a_missing_member_is_still_not_a_401(
    user: uuid.UUID, auth_client: httpx.AsyncClient
) -> None:
    room = (await auth_client.post("/api/chat-rooms", json={"title": "r"})).json()

    added = await auth_client.post(
        f"/api/chat-rooms/{room['id']}/members", json={"user_id": str(uuid.uuid4())}
    )

    assert added.status_code != 401
    assert added.status_code < 500, added.text
