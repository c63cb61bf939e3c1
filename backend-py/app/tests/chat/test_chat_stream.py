import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from src.domain.errors import LLMProviderError
from tests.chat.conftest import ScriptedLLM
from tests.support.sse import sse_events


async def stream_chat(
    client: httpx.AsyncClient, payload: dict[str, object]
) -> tuple[httpx.Response, list[tuple[str, dict[str, object]]]]:
    async with client.stream("POST", "/api/chat/stream", json=payload) as response:
        body = (await response.aread()).decode()
    if response.status_code != 200:
        return response, []
    return response, sse_events(body.splitlines())


async def test_events_come_in_order_and_the_answer_is_saved_once(
    auth_client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    response, events = await stream_chat(auth_client, {"message": "Tell me something"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    names = [name for name, _ in events]
    assert names[:2] == ["meta", "sources"]
    assert names[-1] == "done"
    assert set(names[2:-1]) == {"token"}
    tokens = "".join(str(data["delta"]) for name, data in events if name == "token")
    done = events[-1][1]
    assert tokens == done["ai_response"]
    meta = events[0][1]
    rows = await connection.execute(
        text(
            "select id, role, content from messages where chat_room_id = :r order by id"
        ),
        {"r": meta["chat_room_id"]},
    )
    saved = [(r.id, r.role, r.content) for r in rows]
    assert saved == [
        (meta["user_message_id"], "user", "Tell me something"),
        (done["ai_message_id"], "assistant", done["ai_response"]),
    ]


async def test_a_failure_midway_ends_with_one_error_event_and_no_answer(
    auth_client: httpx.AsyncClient,
    connection: AsyncConnection,
    scripted_llm: ScriptedLLM,
) -> None:
    scripted_llm.deltas = ["Half", " an"]
    scripted_llm.error = LLMProviderError("The language model provider failed.")
    response, events = await stream_chat(auth_client, {"message": "Go on"})
    assert response.status_code == 200
    names = [name for name, _ in events]
    assert names == ["meta", "sources", "token", "token", "error"]
    assert events[-1][1] == {
        "code": "llm_provider_error",
        "message": "The language model provider failed.",
    }
    rows = await connection.execute(text("select role from messages"))
    assert rows.scalars().all() == ["user"]


async def test_an_unexpected_failure_is_an_error_event_too(
    auth_client: httpx.AsyncClient, scripted_llm: ScriptedLLM
) -> None:
    scripted_llm.error = RuntimeError("bug")  # type: ignore[assignment]
    _, events = await stream_chat(auth_client, {"message": "Go on"})
    assert events[-1] == (
        "error",
        {"code": "internal_error", "message": "An unexpected error occurred."},
    )


async def test_room_errors_are_plain_json_before_the_stream(
    auth_client: httpx.AsyncClient,
) -> None:
    response, _ = await stream_chat(
        auth_client, {"message": "hi", "chat_room_id": 123_456_789}
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"


async def test_streaming_requires_a_token(client: httpx.AsyncClient) -> None:
    response, _ = await stream_chat(client, {"message": "hi"})
    assert response.status_code == 401
