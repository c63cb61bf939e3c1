"""The served API writes one log line per request, model calls included."""

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ApiServer
from tests.support.fake_openai import FakeOpenAI

pytestmark = pytest.mark.e2e

LOG_WAIT_S = 10.0


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def info_server(e2e_database_url: str, fake_llm: FakeOpenAI) -> Iterator[ApiServer]:
    """The API at ``LOG_LEVEL=INFO`` (the production default), OpenAI configured."""
    server = ApiServer(
        e2e_database_url,
        LOG_LEVEL="INFO",
        LOG_JSON="true",
        OPENAI_API_KEY="sk-e2e-logging",
        OPENAI_BASE_URL=fake_llm.base_url,
        LLM_MAX_RETRIES="0",
    )
    server.start()
    yield server
    server.stop()


def log_lines(server: ApiServer) -> list[dict[str, Any]]:
    """The complete lines so far (the server may be writing the last one)."""
    complete = server.log().rpartition("\n")[0]
    lines = []
    for line in complete.splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            lines.append({"logger": "?", "message": line, "request_id": None})
    return lines


def lines_of(server: ApiServer, request_id: str) -> list[dict[str, Any]]:
    """The request's lines, once its access line is written (after the body)."""
    deadline = time.monotonic() + LOG_WAIT_S
    while True:
        lines = [line for line in log_lines(server) if line["request_id"] == request_id]
        if any(line["logger"] == "src.access" for line in lines):
            return lines
        if time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


@pytest.mark.parametrize("path", ["/api/chat", "/api/chat/stream"])
def test_a_chat_turn_logs_one_line(
    info_server: ApiServer, fake_llm: FakeOpenAI, path: str
) -> None:
    _, headers = info_server.new_user()
    request_id = f"log-one-line-{path.rsplit('/', 1)[-1]}"
    calls_before = len(fake_llm.requests)
    response = httpx.post(
        f"{info_server.base_url}{path}",
        json={"message": "What does the guide say?"},
        headers={**headers, "X-Request-ID": request_id},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert len(fake_llm.requests) - calls_before == 2  # embedding and chat calls
    lines = lines_of(info_server, request_id)
    assert [(line["logger"], line["message"]) for line in lines] == [
        ("src.access", f"POST {path} 200")
    ]
    unwanted = [
        line
        for line in log_lines(info_server)
        if line["logger"] in {"uvicorn.access", "httpx", "httpx2", "?"}
    ]
    assert unwanted == []
