import uuid

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from src.settings import Settings
from tests.chat.conftest import ScriptedLLM

PERSONA = {"name": "Pirate", "system_prompt": "Talk like a pirate.", "temperature": 0.9}


async def test_users_list_admin_personas_then_their_own(
    auth_client: httpx.AsyncClient, admin_persona: int
) -> None:
    created = await auth_client.post("/api/virtual-users", json=PERSONA)
    assert created.status_code == 201
    listed = (await auth_client.get("/api/virtual-users")).json()
    assert [p["id"] for p in listed] == [admin_persona, created.json()["id"]]
    assert listed[0]["owner_id"] is None
    assert listed[0]["is_default"] is True


async def test_a_persona_is_updated_and_deleted_by_its_owner(
    auth_client: httpx.AsyncClient, user: uuid.UUID
) -> None:
    persona = (await auth_client.post("/api/virtual-users", json=PERSONA)).json()
    assert persona["owner_id"] == str(user)
    patched = await auth_client.patch(
        f"/api/virtual-users/{persona['id']}", json={"name": "Captain", "model": None}
    )
    assert patched.json()["name"] == "Captain"
    assert patched.json()["system_prompt"] == PERSONA["system_prompt"]
    unchanged = await auth_client.patch(f"/api/virtual-users/{persona['id']}", json={})
    assert unchanged.json()["name"] == "Captain"
    deleted = await auth_client.delete(f"/api/virtual-users/{persona['id']}")
    assert deleted.status_code == 204
    assert (await auth_client.get("/api/virtual-users")).json() == []


async def test_admin_personas_are_read_only_and_others_invisible(
    auth_client: httpx.AsyncClient,
    other_client: httpx.AsyncClient,
    admin_persona: int,
) -> None:
    forbidden = await auth_client.patch(
        f"/api/virtual-users/{admin_persona}", json={"name": "Mine now"}
    )
    assert forbidden.status_code == 403
    theirs = (await other_client.post("/api/virtual-users", json=PERSONA)).json()
    for response in [
        await auth_client.patch(
            f"/api/virtual-users/{theirs['id']}", json={"name": "x"}
        ),
        await auth_client.delete(f"/api/virtual-users/{theirs['id']}"),
    ]:
        assert response.status_code == 404
    assert theirs["id"] not in [
        p["id"] for p in (await auth_client.get("/api/virtual-users")).json()
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "", "system_prompt": "x"},
        {"name": "x", "system_prompt": ""},
        {"name": "x", "system_prompt": "y", "temperature": 2.5},
        {"name": "x", "system_prompt": "y", "max_tokens": 0},
        {"name": "x", "system_prompt": "y", "max_tokens": 32001},
        {"name": "x" * 101, "system_prompt": "y"},
        {"name": "x", "system_prompt": "y", "owner_id": None},
    ],
)
async def test_invalid_personas_are_422(
    auth_client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    response = await auth_client.post("/api/virtual-users", json=body)
    assert response.status_code == 422


async def test_models_must_be_allowed_when_openai_is_configured(
    auth_client: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings: Settings = app.state.settings
    monkeypatch.setattr(settings, "openai_api_key", SecretStr("sk-test"))
    refused = await auth_client.post(
        "/api/virtual-users", json={**PERSONA, "model": "made-up-model"}
    )
    assert refused.status_code == 422
    assert "made-up-model" in refused.json()["message"]
    allowed = await auth_client.post(
        "/api/virtual-users", json={**PERSONA, "model": settings.allowed_chat_models[0]}
    )
    assert allowed.status_code == 201


async def test_a_personas_model_settings_reach_the_model(
    auth_client: httpx.AsyncClient, scripted_llm: ScriptedLLM
) -> None:
    created = await auth_client.post(
        "/api/virtual-users", json=PERSONA | {"max_tokens": 77}
    )
    persona = created.json()
    assert persona["max_tokens"] == 77
    listed = (await auth_client.get("/api/virtual-users")).json()
    assert listed[0]["temperature"] == PERSONA["temperature"]  # not 0.8999999…
    patched = await auth_client.patch(
        f"/api/virtual-users/{persona['id']}", json={"max_tokens": 64}
    )
    assert patched.json()["max_tokens"] == 64
    reply = await auth_client.post(
        "/api/chat", json={"message": "Ahoy?", "virtual_user_id": persona["id"]}
    )
    assert reply.status_code == 200
    assert scripted_llm.options[-1] == {
        "model": None,
        "temperature": PERSONA["temperature"],
        "max_tokens": 64,
    }
    streamed = await auth_client.post(
        "/api/chat/stream",
        json={"message": "Again?", "chat_room_id": reply.json()["chat_room_id"]},
    )
    assert streamed.status_code == 200
    assert scripted_llm.options[-1]["max_tokens"] == 64


async def test_a_members_own_persona_answers_for_everyone_in_the_room(
    auth_client: httpx.AsyncClient,
    other_client: httpx.AsyncClient,
    other_user: uuid.UUID,
    scripted_llm: ScriptedLLM,
) -> None:
    persona = (await auth_client.post("/api/virtual-users", json=PERSONA)).json()
    room = (
        await auth_client.post(
            "/api/chat-rooms", json={"title": "Ship", "virtual_user_id": persona["id"]}
        )
    ).json()
    await auth_client.post(
        f"/api/chat-rooms/{room['id']}/members", json={"user_id": str(other_user)}
    )
    reply = await other_client.post(
        "/api/chat", json={"message": "Ahoy?", "chat_room_id": room["id"]}
    )
    assert reply.status_code == 200
    system_prompt = str(scripted_llm.prompts[-1][0].content)
    assert "Talk like a pirate." in system_prompt
    seen = (await other_client.get(f"/api/chat-rooms/{room['id']}")).json()
    assert seen["virtual_user"] == {"id": persona["id"], "name": "Pirate"}


async def test_deleting_a_persona_falls_back_to_the_default(
    auth_client: httpx.AsyncClient,
    admin_persona: int,
    scripted_llm: ScriptedLLM,
    connection: AsyncConnection,
) -> None:
    persona = (await auth_client.post("/api/virtual-users", json=PERSONA)).json()
    room_id = (
        await auth_client.post(
            "/api/chat", json={"message": "hi", "virtual_user_id": persona["id"]}
        )
    ).json()["chat_room_id"]
    await auth_client.delete(f"/api/virtual-users/{persona['id']}")
    reply = await auth_client.post(
        "/api/chat", json={"message": "still there?", "chat_room_id": room_id}
    )
    assert reply.status_code == 200
    assert "Answer from the context" in str(scripted_llm.prompts[-1][0].content)
    sender = await connection.execute(
        text("select sender_virtual_user_id from messages where id = :id"),
        {"id": reply.json()["ai_message_id"]},
    )
    assert sender.scalar_one() == admin_persona
