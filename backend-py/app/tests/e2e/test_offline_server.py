"""The served API, over real HTTP, with the offline providers."""

import asyncio

import httpx
import pytest

from tests.e2e.conftest import ApiServer
from tests.support.sse import sse_events

pytestmark = pytest.mark.e2e


def test_health_and_readiness(offline_server: ApiServer) -> None:
    assert httpx.get(f"{offline_server.base_url}/health").json() == {"status": "ok"}
    ready = httpx.get(f"{offline_server.base_url}/health/ready")
    assert ready.json() == {"status": "ok", "database": "ok"}
    assert ready.headers["x-request-id"]


def test_a_user_chats_and_reads_the_history(offline_server: ApiServer) -> None:
    _, headers = offline_server.new_user()
    with httpx.Client(base_url=offline_server.base_url, headers=headers) as client:
        answer = client.post("/api/chat", json={"message": "Hello, who are you?"})
        assert answer.status_code == 200, answer.text
        room_id = answer.json()["chat_room_id"]
        history = client.get(f"/api/chat-rooms/{room_id}/messages").json()
    assert [m["role"] for m in history["messages"]] == ["user", "assistant"]
    assert history["messages"][1]["content"] == answer.json()["ai_response"]


def test_a_stream_is_read_event_by_event(offline_server: ApiServer) -> None:
    _, headers = offline_server.new_user()
    with (
        httpx.Client(base_url=offline_server.base_url, headers=headers) as client,
        client.stream("POST", "/api/chat/stream", json={"message": "Hi"}) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(list(response.iter_lines()))
    assert events[0][0] == "meta"
    assert events[-1][0] == "done"
    ai_id = events[-1][1]["ai_message_id"]
    assert offline_server.query("select role from messages where id = %s", ai_id) == [
        ("assistant",)
    ]


async def test_concurrent_messages_to_one_room_all_land_in_order(
    offline_server: ApiServer,
) -> None:
    _, headers = offline_server.new_user()
    async with httpx.AsyncClient(
        base_url=offline_server.base_url, headers=headers, timeout=30
    ) as client:
        first = await client.post("/api/chat", json={"message": "start"})
        room_id = first.json()["chat_room_id"]
        replies = await asyncio.gather(
            *(
                client.post(
                    "/api/chat", json={"message": f"msg {n}", "chat_room_id": room_id}
                )
                for n in range(6)
            )
        )
        assert [r.status_code for r in replies] == [200] * 6
        history = (
            await client.get(f"/api/chat-rooms/{room_id}/messages?limit=100")
        ).json()["messages"]
    ids = [m["id"] for m in history]
    assert ids == sorted(ids)
    assert len(history) == 14
    user_ids = {r.json()["user_message_id"] for r in replies}
    assert user_ids <= set(ids)
    stored = offline_server.query(
        "select count(*) from messages where chat_room_id = %s", room_id
    )
    assert stored == [(14,)]


def test_requests_without_a_token_are_refused(offline_server: ApiServer) -> None:
    response = httpx.post(f"{offline_server.base_url}/api/chat", json={"message": "x"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
