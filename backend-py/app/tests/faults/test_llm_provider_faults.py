"""The LLM provider hangs or drops a stream: nothing is lost, the error is clear."""

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.faults.conftest import FaultServer, FaultyOpenAI, openai_env
from tests.support.fake_openai import GARBLES, Garble
from tests.support.sse import sse_events

pytestmark = pytest.mark.e2e

LONG_REPLY = " ".join(f"word{n}" for n in range(30))
LLM_TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def server(
    faults_database_url: str, fake_provider: FaultyOpenAI
) -> Iterator[FaultServer]:
    api = FaultServer(
        faults_database_url,
        **openai_env(
            fake_provider, LLM_TIMEOUT_S=str(LLM_TIMEOUT_S), WORKER_ENABLED="false"
        ),
    )
    api.start()
    yield api
    api.stop()


def room_messages(server: FaultServer, room_id: int) -> list[tuple[object, ...]]:
    return server.query(
        "select role, content from messages where chat_room_id = %s order by id",
        room_id,
    )


def test_a_hanging_model_is_504_the_message_is_kept_and_the_next_turn_works(
    server: FaultServer, fake_provider: FaultyOpenAI
) -> None:
    _, headers = server.new_user()
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
        room = client.post("/api/chat-rooms", json={"title": "hang"}).json()["id"]
        fake_provider.chat_hang_s = 30
        started = time.monotonic()
        hung = client.post(
            "/api/chat", json={"message": "hello?", "chat_room_id": room}
        )
        waited = time.monotonic() - started
        assert hung.status_code == 504
        assert hung.json()["error"] == "llm_timeout"
        assert waited < 10, "the request must give up after LLM_TIMEOUT_S"
        fake_provider.chat_hang_s = 0
        answered = client.post(
            "/api/chat", json={"message": "and now?", "chat_room_id": room}
        )
        assert answered.status_code == 200
    assert room_messages(server, room) == [
        ("user", "hello?"),
        ("user", "and now?"),
        ("assistant", fake_provider.reply),
    ]


def test_a_stream_dropped_midway_ends_with_one_error_event(
    server: FaultServer, fake_provider: FaultyOpenAI
) -> None:
    fake_provider.reply = LONG_REPLY
    fake_provider.drop_stream_after = 4  # the role chunk, then three words
    _, headers = server.new_user()
    with (
        httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client,
        client.stream(
            "POST", "/api/chat/stream", json={"message": "tell me everything"}
        ) as response,
    ):
        assert response.status_code == 200
        events = sse_events(list(response.iter_lines()))
    names = [name for name, _ in events]
    assert names[:2] == ["meta", "sources"]
    assert names[2:-1] == ["token"] * 3
    assert names[-1] == "error"
    assert events[-1][1]["code"] == "llm_provider_error"
    room_id = events[0][1]["chat_room_id"]
    assert room_messages(server, room_id) == [("user", "tell me everything")]

    fake_provider.reset()
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
        again = client.post(
            "/api/chat", json={"message": "once more", "chat_room_id": room_id}
        )
    assert again.status_code == 200
    assert [role for role, _ in room_messages(server, room_id)] == [
        "user",
        "user",
        "assistant",
    ]


def test_a_stream_that_stalls_midway_ends_with_a_timeout_event(
    server: FaultServer, fake_provider: FaultyOpenAI
) -> None:
    # No per-chunk timer of LangChain's: the SDK's read timeout (LLM_TIMEOUT_S)
    # is what ends a stream that stops sending.
    fake_provider.reply = LONG_REPLY
    fake_provider.stall_stream_after = 4  # the role chunk, then three words
    _, headers = server.new_user()
    try:
        with (
            httpx.Client(
                base_url=server.base_url, headers=headers, timeout=30
            ) as client,
            client.stream(
                "POST", "/api/chat/stream", json={"message": "and then?"}
            ) as response,
        ):
            assert response.status_code == 200
            events = sse_events(list(response.iter_lines()))
    finally:
        fake_provider.reset()
    names = [name for name, _ in events]
    assert names == ["meta", "sources", "token", "token", "token", "error"]
    assert events[-1][1]["code"] == "llm_timeout"
    room_id = events[0][1]["chat_room_id"]
    assert room_messages(server, room_id) == [("user", "and then?")]


@pytest.mark.parametrize("garble", GARBLES)
def test_an_invalid_answer_is_502_and_an_error_event_in_a_stream(
    server: FaultServer, fake_provider: FaultyOpenAI, garble: Garble
) -> None:
    _, headers = server.new_user()
    fake_provider.garble_next(2, garble)
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
        answered = client.post("/api/chat", json={"message": "hello?"})
        with client.stream(
            "POST", "/api/chat/stream", json={"message": "hello again?"}
        ) as response:
            events = sse_events(list(response.iter_lines()))

    assert answered.status_code == 502, answered.text
    assert answered.json()["error"] == "llm_provider_error"
    assert response.status_code == 200
    assert events[-1][0] == "error"
    assert events[-1][1]["code"] == "llm_provider_error"
