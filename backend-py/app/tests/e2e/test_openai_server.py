"""The served API with OpenAI over real HTTP (a fake OpenAI-compatible server)."""

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import ApiServer
from tests.support.fake_openai import FakeOpenAI

pytestmark = pytest.mark.e2e

LONG_REPLY = " ".join(f"word{n}" for n in range(40))


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def openai_server(e2e_database_url: str, fake_llm: FakeOpenAI) -> Iterator[ApiServer]:
    server = ApiServer(
        e2e_database_url,
        OPENAI_API_KEY="sk-e2e-test",
        OPENAI_BASE_URL=fake_llm.base_url,
        LLM_TIMEOUT_S="3",
        LLM_MAX_RETRIES="0",
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def reset_fake(fake_llm: FakeOpenAI) -> None:
    fake_llm.reset()


def test_the_answer_comes_from_the_openai_server(
    openai_server: ApiServer, fake_llm: FakeOpenAI
) -> None:
    _, headers = openai_server.new_user()
    response = httpx.post(
        f"{openai_server.base_url}/api/chat",
        json={"message": "What does the guide say?"},
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["ai_response"] == fake_llm.reply
    sent = fake_llm.requests_to("/v1/chat/completions")[-1]
    assert sent.body["model"] == "gpt-4o-mini"
    assert sent.headers["authorization"] == "Bearer sk-e2e-test"
    assert fake_llm.requests_to("/v1/embeddings")[-1].body["dimensions"] == 384


def test_a_provider_failure_is_502_and_keeps_the_user_message(
    openai_server: ApiServer, fake_llm: FakeOpenAI
) -> None:
    _, headers = openai_server.new_user()
    with httpx.Client(base_url=openai_server.base_url, headers=headers) as client:
        room = client.post("/api/chat-rooms", json={"title": "faults"}).json()["id"]
        fake_llm.fail_next(1, status=500)
        failed = client.post(
            "/api/chat", json={"message": "fail please", "chat_room_id": room}
        )
        assert failed.status_code == 502
        assert "sk-e2e-test" not in failed.text
        recovered = client.post(
            "/api/chat", json={"message": "and now?", "chat_room_id": room}
        )
        assert recovered.status_code == 200
    rows = openai_server.query(
        "select role, content from messages where chat_room_id = %s order by id", room
    )
    assert rows == [
        ("user", "fail please"),
        ("user", "and now?"),
        ("assistant", fake_llm.reply),
    ]


def test_a_client_that_disconnects_midway_leaves_no_partial_answer(
    openai_server: ApiServer, fake_llm: FakeOpenAI
) -> None:
    fake_llm.reply = LONG_REPLY
    fake_llm.stream_delay_s = 0.1
    _, headers = openai_server.new_user()
    room_id = None
    with (
        httpx.Client(base_url=openai_server.base_url, headers=headers) as client,
        client.stream("POST", "/api/chat/stream", json={"message": "talk"}) as stream,
    ):
        for line in stream.iter_lines():
            if line.startswith("data: ") and room_id is None:
                room_id = json.loads(line.removeprefix("data: "))["chat_room_id"]
            if line == "event: token":
                break  # hang up after the first token
    assert room_id is not None
    # The full answer would take 4 s; give the server time to have finished it.
    time.sleep(5)
    rows = openai_server.query(
        "select role, status from messages where chat_room_id = %s order by id",
        room_id,
    )
    assert rows == [("user", "complete")]
    assert httpx.get(f"{openai_server.base_url}/health").status_code == 200
