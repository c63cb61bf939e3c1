"""Another user's room, message, document or persona: 404, and nothing of it shown.

Whatever the route, a thing the caller may not see answers exactly like a thing
that does not exist, and no request about it changes it.
"""

import uuid
from typing import Any

import httpx

from src.domain.entity.request import MAX_ROW_ID
from tests.security.conftest import Stranger


def requests_about(stranger: Stranger, me: uuid.UUID) -> list[tuple[str, str, Any]]:
    """Every request that names one of the stranger's things by id."""
    room = f"/api/chat-rooms/{stranger.room_id}"
    turn = {"message": "show me", "chat_room_id": stranger.room_id}
    with_persona = {"virtual_user_id": stranger.persona_id}
    return [
        ("GET", room, None),
        ("PATCH", room, {"title": "mine now"}),
        ("DELETE", room, None),
        ("GET", f"{room}/messages", None),
        ("POST", f"{room}/members", {"user_id": str(me)}),
        ("DELETE", f"{room}/members/{stranger.user_id}", None),
        ("POST", "/api/chat", turn),
        ("POST", "/api/chat/stream", turn),
        ("POST", "/api/search", {"query": "zebra", "chat_room_id": stranger.room_id}),
        (
            "POST",
            "/api/documents",
            {
                "title": "planted",
                "content": "planted",
                "visibility": "room",
                "chat_room_id": stranger.room_id,
            },
        ),
        ("GET", f"/api/documents/{stranger.document_id}", None),
        ("DELETE", f"/api/documents/{stranger.document_id}", None),
        ("GET", f"/api/documents/{stranger.room_document_id}", None),
        ("DELETE", f"/api/documents/{stranger.room_document_id}", None),
        ("PATCH", f"/api/virtual-users/{stranger.persona_id}", {"name": "mine"}),
        ("DELETE", f"/api/virtual-users/{stranger.persona_id}", None),
        ("POST", "/api/chat-rooms", {"title": "borrowed", **with_persona}),
        ("POST", "/api/chat", {"message": "hello", **with_persona}),
        ("POST", "/api/chat/stream", {"message": "hello", **with_persona}),
    ]


async def test_every_request_about_anothers_thing_is_404_without_its_data(
    auth_client: httpx.AsyncClient, stranger: Stranger, user: uuid.UUID
) -> None:
    for method, path, body in requests_about(stranger, user):
        response = await auth_client.request(method, path, json=body)
        where = f"{method} {path} {body}"
        assert response.status_code == 404, (where, response.text)
        assert response.json()["error"] == "not_found", where
        assert stranger.leaked_in(response.text) == [], (where, response.text)


async def test_the_strangers_things_are_unchanged_afterwards(
    auth_client: httpx.AsyncClient,
    stranger_client: httpx.AsyncClient,
    stranger: Stranger,
    user: uuid.UUID,
) -> None:
    for method, path, body in requests_about(stranger, user):
        await auth_client.request(method, path, json=body)

    room = (await stranger_client.get(f"/api/chat-rooms/{stranger.room_id}")).json()
    assert room["title"] == "SECRET-ROOM-TITLE"
    assert [m["user_id"] for m in room["members"]] == [str(stranger.user_id)]
    history = await stranger_client.get(f"/api/chat-rooms/{stranger.room_id}/messages")
    assert [m["role"] for m in history.json()["messages"]] == ["user", "assistant"]
    personas = (await stranger_client.get("/api/virtual-users")).json()
    assert [p["name"] for p in personas if p["id"] == stranger.persona_id] == ["Sphinx"]
    documents = (await stranger_client.get("/api/documents")).json()["items"]
    assert {d["id"] for d in documents} == {
        stranger.document_id,
        stranger.room_document_id,
    }


async def test_a_persona_of_anothers_room_cannot_become_my_default(
    auth_client: httpx.AsyncClient, stranger: Stranger
) -> None:
    response = await auth_client.patch(
        "/api/me", json={"default_virtual_user_id": stranger.persona_id}
    )
    missing = await auth_client.patch(
        "/api/me", json={"default_virtual_user_id": MAX_ROW_ID}
    )

    # Refused exactly as an id that does not exist is.
    assert response.status_code == missing.status_code == 422, response.text
    assert response.json()["message"].replace(
        str(stranger.persona_id), "N"
    ) == missing.json()["message"].replace(str(MAX_ROW_ID), "N")
    assert stranger.leaked_in(response.text) == []
    me = (await auth_client.get("/api/me")).json()
    assert me["profile"]["default_virtual_user_id"] is None


async def test_my_lists_and_searches_show_nothing_of_the_stranger(
    auth_client: httpx.AsyncClient, stranger: Stranger
) -> None:
    for path in ("/api/chat-rooms", "/api/documents", "/api/virtual-users", "/api/me"):
        response = await auth_client.get(path)
        assert response.status_code == 200, path
        assert stranger.leaked_in(response.text) == [], path
    search = await auth_client.post(
        "/api/search", json={"query": "SECRET-DOC-CONTENT zebra", "k": 20}
    )
    assert search.status_code == 200
    assert search.json()["hits"] == []


async def test_the_stranger_sees_their_own_secrets(
    stranger_client: httpx.AsyncClient, stranger: Stranger
) -> None:
    # The control of the tests above: the same data is there, for its owner.
    search = await stranger_client.post(
        "/api/search", json={"query": "SECRET-DOC-CONTENT zebra", "k": 20}
    )
    room = await stranger_client.get(f"/api/chat-rooms/{stranger.room_id}/messages")

    assert stranger.leaked_in(search.text)
    assert "SECRET-MESSAGE-0815" in room.text


async def test_a_strangers_message_id_as_my_history_cursor_shows_only_mine(
    auth_client: httpx.AsyncClient, stranger: Stranger
) -> None:
    mine = await auth_client.post("/api/chat", json={"message": "my own words"})
    room_id = mine.json()["chat_room_id"]

    page = await auth_client.get(
        f"/api/chat-rooms/{room_id}/messages",
        params={"before": stranger.message_id + 1000},
    )

    assert page.status_code == 200
    assert [m["chat_room_id"] for m in page.json()["messages"]] == [room_id] * 2
    assert stranger.leaked_in(page.text) == []
