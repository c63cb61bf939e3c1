import uuid
from datetime import datetime

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.chat.conftest import ScriptedLLM


async def create_room(client: httpx.AsyncClient, title: str = "Plans") -> int:
    response = await client.post("/api/chat-rooms", json={"title": title})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def test_create_get_and_list_rooms(
    auth_client: httpx.AsyncClient, user: uuid.UUID, admin_persona: int
) -> None:
    created = await auth_client.post("/api/chat-rooms", json={"title": "  Trip  "})
    assert created.status_code == 201
    room = created.json()
    assert room["title"] == "Trip"
    assert room["created_by"] == str(user)
    assert room["virtual_user"] == {"id": admin_persona, "name": "Assistant"}
    assert [m["role"] for m in room["members"]] == ["owner"]
    fetched = await auth_client.get(f"/api/chat-rooms/{room['id']}")
    assert fetched.json() == room
    listed = await auth_client.get("/api/chat-rooms")
    assert [r["id"] for r in listed.json()] == [room["id"]]


async def test_rooms_are_listed_by_latest_activity_with_a_preview(
    auth_client: httpx.AsyncClient,
    scripted_llm: ScriptedLLM,
    connection: AsyncConnection,
) -> None:
    older = await create_room(auth_client, "older")
    newer = await create_room(auth_client, "newer")
    # now() is frozen inside the test's transaction: age the rooms by hand.
    await connection.execute(
        text("update chat_rooms set created_at = now() - interval '1 hour'")
    )
    await auth_client.post("/api/chat", json={"message": "bump", "chat_room_id": older})
    rooms = (await auth_client.get("/api/chat-rooms")).json()
    assert [r["id"] for r in rooms] == [older, newer]
    assert rooms[0]["last_message_preview"] == "Hello there"
    assert rooms[1]["last_message_preview"] is None
    newest = await connection.execute(
        text("select max(created_at) from messages where chat_room_id = :room"),
        {"room": older},
    )
    last_at = datetime.fromisoformat(rooms[0]["last_message_at"])
    assert last_at == newest.scalar_one()
    assert rooms[1]["last_message_at"] is None
    fetched = (await auth_client.get(f"/api/chat-rooms/{older}")).json()
    assert fetched["last_message_at"] == rooms[0]["last_message_at"]


async def test_only_the_owner_renames_and_deletes(
    auth_client: httpx.AsyncClient,
    other_client: httpx.AsyncClient,
    other_user: uuid.UUID,
    connection: AsyncConnection,
    scripted_llm: ScriptedLLM,
) -> None:
    room_id = await create_room(auth_client)
    await auth_client.post("/api/chat", json={"message": "hi", "chat_room_id": room_id})
    await auth_client.post(
        f"/api/chat-rooms/{room_id}/members", json={"user_id": str(other_user)}
    )
    rename = await other_client.patch(f"/api/chat-rooms/{room_id}", json={"title": "X"})
    assert rename.status_code == 403
    delete = await other_client.delete(f"/api/chat-rooms/{room_id}")
    assert delete.status_code == 403
    renamed = await auth_client.patch(
        f"/api/chat-rooms/{room_id}", json={"title": "New"}
    )
    assert renamed.json()["title"] == "New"
    assert (await auth_client.delete(f"/api/chat-rooms/{room_id}")).status_code == 204
    assert (await auth_client.get(f"/api/chat-rooms/{room_id}")).status_code == 404
    left = await connection.execute(
        text("select count(*) from messages where chat_room_id = :r"), {"r": room_id}
    )
    assert left.scalar_one() == 0


async def test_non_members_get_404_everywhere(
    auth_client: httpx.AsyncClient, other_client: httpx.AsyncClient
) -> None:
    room_id = await create_room(auth_client)
    for method, path, body in [
        ("GET", f"/api/chat-rooms/{room_id}", None),
        ("PATCH", f"/api/chat-rooms/{room_id}", {"title": "mine"}),
        ("DELETE", f"/api/chat-rooms/{room_id}", None),
        ("GET", f"/api/chat-rooms/{room_id}/messages", None),
        ("POST", f"/api/chat-rooms/{room_id}/members", {"account_name": "someone"}),
    ]:
        response = await other_client.request(method, path, json=body)
        assert response.status_code == 404, (method, path)
        assert "Plans" not in response.text


async def test_members_are_added_by_account_name_and_may_leave(
    auth_client: httpx.AsyncClient,
    other_client: httpx.AsyncClient,
    other_user: uuid.UUID,
    connection: AsyncConnection,
) -> None:
    room_id = await create_room(auth_client)
    account = (
        await connection.execute(
            text("select account_name from general_users where id = :id"),
            {"id": other_user},
        )
    ).scalar_one()
    added = await auth_client.post(
        f"/api/chat-rooms/{room_id}/members", json={"account_name": account.upper()}
    )
    assert added.status_code == 201
    assert {m["account_name"] for m in added.json()["members"]} >= {account}
    again = await auth_client.post(
        f"/api/chat-rooms/{room_id}/members", json={"user_id": str(other_user)}
    )
    assert again.status_code == 409
    visible = await other_client.get(f"/api/chat-rooms/{room_id}")
    assert visible.status_code == 200
    left = await other_client.delete(f"/api/chat-rooms/{room_id}/members/{other_user}")
    assert left.status_code == 204
    assert (await other_client.get(f"/api/chat-rooms/{room_id}")).status_code == 404


async def test_member_management_rules(
    auth_client: httpx.AsyncClient,
    other_client: httpx.AsyncClient,
    user: uuid.UUID,
    other_user: uuid.UUID,
) -> None:
    room_id = await create_room(auth_client)
    unknown = await auth_client.post(
        f"/api/chat-rooms/{room_id}/members", json={"user_id": str(uuid.uuid4())}
    )
    assert unknown.status_code == 404
    both = await auth_client.post(
        f"/api/chat-rooms/{room_id}/members",
        json={"user_id": str(other_user), "account_name": "x"},
    )
    assert both.status_code == 422
    await auth_client.post(
        f"/api/chat-rooms/{room_id}/members", json={"user_id": str(other_user)}
    )
    kick_owner = await other_client.delete(f"/api/chat-rooms/{room_id}/members/{user}")
    assert kick_owner.status_code == 403
    owner_leaves = await auth_client.delete(f"/api/chat-rooms/{room_id}/members/{user}")
    assert owner_leaves.status_code == 422
    removed = await auth_client.delete(
        f"/api/chat-rooms/{room_id}/members/{other_user}"
    )
    assert removed.status_code == 204
    missing = await auth_client.delete(
        f"/api/chat-rooms/{room_id}/members/{other_user}"
    )
    assert missing.status_code == 404


async def test_history_pages_backwards_oldest_first_within_a_page(
    auth_client: httpx.AsyncClient, scripted_llm: ScriptedLLM
) -> None:
    room_id = await create_room(auth_client)
    for n in range(3):
        await auth_client.post(
            "/api/chat", json={"message": f"m{n}", "chat_room_id": room_id}
        )
    first = (
        await auth_client.get(f"/api/chat-rooms/{room_id}/messages?limit=4")
    ).json()
    contents = [m["content"] for m in first["messages"]]
    assert contents == ["m1", "Hello there", "m2", "Hello there"]
    older = (
        await auth_client.get(
            f"/api/chat-rooms/{room_id}/messages?limit=4&before={first['next_before']}"
        )
    ).json()
    assert [m["content"] for m in older["messages"]] == ["m0", "Hello there"]
    assert older["next_before"] is None


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "before=0", "limit=abc"])
async def test_bad_history_queries_are_422(
    auth_client: httpx.AsyncClient, query: str
) -> None:
    room_id = await create_room(auth_client)
    response = await auth_client.get(f"/api/chat-rooms/{room_id}/messages?{query}")
    assert response.status_code == 422


@pytest.mark.parametrize(
    "body", [{"title": ""}, {"title": "x" * 201}, {}, {"title": None, "extra": 1}]
)
async def test_bad_room_bodies_are_422(
    auth_client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    response = await auth_client.post("/api/chat-rooms", json=body)
    assert response.status_code == 422


async def test_renaming_to_null_is_refused(auth_client: httpx.AsyncClient) -> None:
    room_id = await create_room(auth_client)
    response = await auth_client.patch(
        f"/api/chat-rooms/{room_id}", json={"title": None}
    )
    assert response.status_code == 422
