import uuid

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from src.domain.errors import LLMProviderError, LLMTimeoutError
from src.infra.ai_providers import AIProviders
from src.infra.db_client import Database
from src.settings import Settings
from tests.chat.conftest import ScriptedLLM, add_shared_document


async def message_rows(
    connection: AsyncConnection, room_id: int
) -> list[tuple[str, str]]:
    rows = await connection.execute(
        text("select role, status from messages where chat_room_id = :r order by id"),
        {"r": room_id},
    )
    return [(r.role, r.status) for r in rows]


async def test_a_first_message_creates_a_room_and_both_messages(
    auth_client: httpx.AsyncClient, connection: AsyncConnection, admin_persona: int
) -> None:
    response = await auth_client.post(
        "/api/chat", json={"message": "  What can you do for me today?  "}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ai_response"]
    assert body["ai_message_id"] > body["user_message_id"]
    assert await message_rows(connection, body["chat_room_id"]) == [
        ("user", "complete"),
        ("assistant", "complete"),
    ]
    room = await auth_client.get(f"/api/chat-rooms/{body['chat_room_id']}")
    assert room.json()["title"] == "What can you do for me today?"
    assert room.json()["virtual_user"]["id"] == admin_persona


async def test_the_answer_cites_a_shared_document(
    auth_client: httpx.AsyncClient,
    connection: AsyncConnection,
    database: Database,
    ai_providers: AIProviders,
    settings: Settings,
) -> None:
    document_id = await add_shared_document(
        connection,
        database,
        ai_providers,
        settings,
        title="Office guide",
        content="The office wifi password is BlueWhale42. Visitors ask reception.",
    )
    response = await auth_client.post(
        "/api/chat", json={"message": "What is the office wifi password?"}
    )
    body = response.json()
    assert response.status_code == 200, body
    assert body["sources"][0]["document_id"] == document_id
    assert body["sources"][0]["title"] == "Office guide"
    assert "BlueWhale42" in body["ai_response"]
    history = await auth_client.get(f"/api/chat-rooms/{body['chat_room_id']}/messages")
    answer = history.json()["messages"][-1]
    assert answer["sources"] == body["sources"]
    assert answer["sender"]["kind"] == "virtual_user"


async def test_follow_ups_carry_the_room_history(
    auth_client: httpx.AsyncClient, scripted_llm: ScriptedLLM
) -> None:
    first = await auth_client.post("/api/chat", json={"message": "My name is Ada."})
    room_id = first.json()["chat_room_id"]
    second = await auth_client.post(
        "/api/chat", json={"message": "What is my name?", "chat_room_id": room_id}
    )
    assert second.status_code == 200
    assert second.json()["chat_room_id"] == room_id
    prompt_text = " ".join(str(m.content) for m in scripted_llm.prompts[-1])
    assert "My name is Ada." in prompt_text
    assert str(scripted_llm.prompts[-1][-1].content).endswith("What is my name?")


async def test_someone_elses_room_is_404_like_a_missing_one(
    auth_client: httpx.AsyncClient, other_client: httpx.AsyncClient
) -> None:
    room_id = (await auth_client.post("/api/chat", json={"message": "hi"})).json()[
        "chat_room_id"
    ]
    theirs = await other_client.post(
        "/api/chat", json={"message": "let me in", "chat_room_id": room_id}
    )
    missing = await other_client.post(
        "/api/chat", json={"message": "let me in", "chat_room_id": 999_999_999}
    )
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["message"].replace(str(room_id), "N") == missing.json()[
        "message"
    ].replace("999999999", "N")


@pytest.mark.parametrize(
    "payload",
    [
        {"message": ""},
        {"message": "   \n "},
        {"message": "x" * 4001},
        {"message": 42},
        {},
        {"message": "hi", "chat_room_id": 0},
        {"message": "hi", "unexpected": True},
    ],
)
async def test_bad_requests_are_422_and_store_nothing(
    auth_client: httpx.AsyncClient, connection: AsyncConnection, payload: object
) -> None:
    response = await auth_client.post("/api/chat", json=payload)
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"
    count = await connection.execute(text("select count(*) from messages"))
    assert count.scalar_one() == 0


async def test_a_persona_that_does_not_match_the_room_is_refused(
    auth_client: httpx.AsyncClient, admin_persona: int, connection: AsyncConnection
) -> None:
    other = await connection.execute(
        text(
            "insert into virtual_users (name, system_prompt) "
            "values ('Tutor', 'Teach.') returning id"
        )
    )
    room_id = (await auth_client.post("/api/chat", json={"message": "hi"})).json()[
        "chat_room_id"
    ]
    response = await auth_client.post(
        "/api/chat",
        json={
            "message": "hi",
            "chat_room_id": room_id,
            "virtual_user_id": other.scalar_one(),
        },
    )
    assert response.status_code == 422
    assert "PATCH /api/chat-rooms" in response.json()["message"]
    kept = await connection.execute(
        text("select count(*) from messages where chat_room_id = :room"),
        {"room": room_id},
    )
    assert kept.scalar_one() == 2  # the first turn's question and answer only


async def test_an_unknown_persona_is_404(auth_client: httpx.AsyncClient) -> None:
    response = await auth_client.post(
        "/api/chat", json={"message": "hi", "virtual_user_id": 987_654}
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (
            LLMProviderError("The language model provider failed."),
            502,
            "llm_provider_error",
        ),
        (
            LLMTimeoutError("The language model did not answer in time."),
            504,
            "llm_timeout",
        ),
    ],
)
async def test_a_failing_llm_keeps_the_user_message_and_stores_no_answer(
    auth_client: httpx.AsyncClient,
    connection: AsyncConnection,
    scripted_llm: ScriptedLLM,
    error: Exception,
    status: int,
    code: str,
) -> None:
    scripted_llm.error = error  # type: ignore[assignment]
    response = await auth_client.post("/api/chat", json={"message": "Are you there?"})
    assert response.status_code == status
    assert response.json()["error"] == code
    rows = await connection.execute(text("select role, content from messages"))
    assert [(r.role, r.content) for r in rows] == [("user", "Are you there?")]
    scripted_llm.error = None
    retry = await auth_client.post("/api/chat", json={"message": "Retry"})
    assert retry.status_code == 200


async def test_the_configured_message_limit_applies(
    auth_client: httpx.AsyncClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "max_message_chars", 10)
    response = await auth_client.post("/api/chat", json={"message": "x" * 11})
    assert response.status_code == 422
    assert "at most 10 characters" in response.json()["message"]


async def test_the_room_quota_applies(
    auth_client: httpx.AsyncClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "max_rooms_per_user", 1)
    assert (
        await auth_client.post("/api/chat", json={"message": "one"})
    ).status_code == 200
    response = await auth_client.post("/api/chat", json={"message": "two"})
    assert response.status_code == 422
    assert "limit of 1 rooms" in response.json()["message"]


async def test_chat_requires_a_token(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/chat", json={"message": "hi"})
    assert response.status_code == 401


async def test_members_see_who_sent_each_message(
    auth_client: httpx.AsyncClient,
    other_client: httpx.AsyncClient,
    other_user: uuid.UUID,
    scripted_llm: ScriptedLLM,
) -> None:
    room_id = (
        await auth_client.post("/api/chat", json={"message": "hello team"})
    ).json()["chat_room_id"]
    added = await auth_client.post(
        f"/api/chat-rooms/{room_id}/members", json={"user_id": str(other_user)}
    )
    assert added.status_code == 201
    reply = await other_client.post(
        "/api/chat", json={"message": "hi from bob", "chat_room_id": room_id}
    )
    assert reply.status_code == 200
    history = (await other_client.get(f"/api/chat-rooms/{room_id}/messages")).json()
    human = [m for m in history["messages"] if m["role"] == "user"]
    assert [m["content"] for m in human] == ["hello team", "hi from bob"]
    assert human[1]["sender"]["id"] == str(other_user)
    assert human[0]["sender"]["id"] != human[1]["sender"]["id"]
    assert all(m["sender"]["name"] for m in human)
