"""POST /api/chat-rooms/{id}/messages: people talk; the persona answers when called.

In process, on the test's rolled-back transaction: the answer runs as a
background task of the request, which the in-process client waits for.
"""

import uuid

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from src.domain.errors import LLMProviderError
from src.domain.service.mentions import ai_replies_of, mentions, persona_answers
from src.domain.service.prompt_builder import SPEAKER_KEY
from tests.chat.conftest import ScriptedLLM


async def shared_room(
    owner: httpx.AsyncClient, member_id: uuid.UUID, connection: AsyncConnection
) -> int:
    """A room of the owner's, with a second member whose display name is Bob."""
    await connection.execute(
        text("update general_users set display_name = 'Bob' where id = :id"),
        {"id": member_id},
    )
    created = await owner.post("/api/chat-rooms", json={"title": "Team"})
    room = int(created.json()["id"])
    added = await owner.post(
        f"/api/chat-rooms/{room}/members", json={"user_id": str(member_id)}
    )
    assert added.status_code == 201, added.text
    return room


async def messages_of(client: httpx.AsyncClient, room: int) -> list[dict[str, object]]:
    page = await client.get(f"/api/chat-rooms/{room}/messages")
    assert page.status_code == 200, page.text
    return list(page.json()["messages"])


async def test_a_message_without_mention_gets_no_answer_in_a_shared_room(
    auth_client: httpx.AsyncClient,
    other_client: httpx.AsyncClient,
    other_user: uuid.UUID,
    connection: AsyncConnection,
    admin_persona: int,
    scripted_llm: ScriptedLLM,
) -> None:
    room = await shared_room(auth_client, other_user, connection)
    posted = await other_client.post(
        f"/api/chat-rooms/{room}/messages", json={"content": "  lunch at noon?  "}
    )
    assert posted.status_code == 201, posted.text
    message = posted.json()
    assert message["content"] == "lunch at noon?"
    assert message["sender"] == {"kind": "user", "id": str(other_user), "name": "Bob"}
    history = await messages_of(auth_client, room)
    assert history == [message]
    assert scripted_llm.prompts == []


async def test_a_mention_calls_the_persona_with_names_in_the_prompt(
    auth_client: httpx.AsyncClient,
    other_client: httpx.AsyncClient,
    other_user: uuid.UUID,
    connection: AsyncConnection,
    admin_persona: int,
    scripted_llm: ScriptedLLM,
) -> None:
    room = await shared_room(auth_client, other_user, connection)
    await auth_client.post(
        f"/api/chat-rooms/{room}/messages", json={"content": "I prefer Tuesday"}
    )
    posted = await other_client.post(
        f"/api/chat-rooms/{room}/messages",
        json={"content": "@assistant what did we say?"},
    )
    assert posted.status_code == 201, posted.text
    history = await messages_of(other_client, room)
    assert [m["role"] for m in history] == ["user", "user", "assistant"]
    answer = history[-1]
    assert answer["content"] == "Hello there"
    assert answer["sender"] == {
        "kind": "virtual_user",
        "id": str(admin_persona),
        "name": "Assistant",
    }
    prompt = scripted_llm.prompts[0]
    assert prompt[-1].additional_kwargs[SPEAKER_KEY] == "Bob"
    assert str(prompt[-1].content) == "Bob: @assistant what did we say?"
    assert str(prompt[-2].content).endswith(": I prefer Tuesday")


async def test_one_person_rooms_answer_every_message(
    auth_client: httpx.AsyncClient, admin_persona: int, scripted_llm: ScriptedLLM
) -> None:
    created = await auth_client.post("/api/chat-rooms", json={"title": "Solo"})
    room = int(created.json()["id"])
    assert created.json()["ai_replies"] is None
    await auth_client.post(f"/api/chat-rooms/{room}/messages", json={"content": "hi"})
    history = await messages_of(auth_client, room)
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert str(scripted_llm.prompts[0][-1].content) == "hi"  # no name when alone


async def test_the_owner_sets_ai_replies_always(
    auth_client: httpx.AsyncClient,
    other_client: httpx.AsyncClient,
    other_user: uuid.UUID,
    connection: AsyncConnection,
    admin_persona: int,
    scripted_llm: ScriptedLLM,
) -> None:
    room = await shared_room(auth_client, other_user, connection)
    refused = await other_client.patch(
        f"/api/chat-rooms/{room}", json={"ai_replies": "always"}
    )
    assert refused.status_code == 403
    invalid = await auth_client.patch(
        f"/api/chat-rooms/{room}", json={"ai_replies": "sometimes"}
    )
    assert invalid.status_code == 422
    updated = await auth_client.patch(
        f"/api/chat-rooms/{room}", json={"ai_replies": "always"}
    )
    assert updated.json()["ai_replies"] == "always"
    await other_client.post(f"/api/chat-rooms/{room}/messages", json={"content": "ok"})
    assert [m["role"] for m in await messages_of(auth_client, room)] == [
        "user",
        "assistant",
    ]


async def test_outsiders_and_invalid_messages_are_refused(
    auth_client: httpx.AsyncClient,
    other_client: httpx.AsyncClient,
    admin_persona: int,
) -> None:
    created = await auth_client.post("/api/chat-rooms", json={"title": "Mine"})
    room = int(created.json()["id"])
    outsider = await other_client.post(
        f"/api/chat-rooms/{room}/messages", json={"content": "let me in"}
    )
    assert outsider.status_code == 404
    for body in ({"content": "   "}, {"content": "x" * 4001}, {"text": "hi"}):
        response = await auth_client.post(f"/api/chat-rooms/{room}/messages", json=body)
        assert response.status_code == 422, body
    missing = await auth_client.post(
        "/api/chat-rooms/999999/messages", json={"content": "hi"}
    )
    assert missing.status_code == 404


async def test_a_failed_answer_keeps_the_message_and_stores_no_answer(
    auth_client: httpx.AsyncClient, admin_persona: int, scripted_llm: ScriptedLLM
) -> None:
    scripted_llm.error = LLMProviderError("provider down")
    created = await auth_client.post("/api/chat-rooms", json={"title": "Solo"})
    room = int(created.json()["id"])
    posted = await auth_client.post(
        f"/api/chat-rooms/{room}/messages", json={"content": "hi"}
    )
    assert posted.status_code == 201
    assert [m["role"] for m in await messages_of(auth_client, room)] == ["user"]


@pytest.mark.parametrize(
    ("message", "called"),
    [
        ("@Ada what now?", True),
        ("hi @ada,", True),
        ("(@ADA)", True),
        ("mail@ada.com", False),
        ("@Adam hello", False),
        ("Ada, what now?", False),
        ("@@ada", False),
    ],
)
def test_mentions_call_the_persona_by_name(message: str, called: bool) -> None:
    assert mentions(message, "Ada") is called


def test_names_of_several_words_and_the_replies_setting() -> None:
    assert mentions("ask @research   helper please", "Research Helper")
    assert not mentions("@research", "Research Helper")
    assert not mentions("@ x", "   ")
    assert ai_replies_of(None, 1) == "always"
    assert ai_replies_of(None, 2) == "mention"
    assert ai_replies_of("mention", 1) == "mention"
    assert ai_replies_of("always", 3) == "always"
    assert persona_answers("no name", "Ada", "always")
    assert not persona_answers("no name", "Ada", "mention")
