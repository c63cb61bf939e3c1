"""SIGTERM during chat turns and indexing: finish, or end clearly; release jobs.

uvicorn gives in-flight work ``SHUTDOWN_GRACE_S`` (here 3 s). A turn that ends
within it is answered normally; one that outlives it is answered 503, or its
stream ends with an ``error`` event; the worker gives its document back.
"""

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.faults.conftest import FaultServer, FaultyOpenAI, openai_env
from tests.support.sse import sse_events

pytestmark = pytest.mark.e2e

GRACE_S = 3
LONG_REPLY = " ".join(f"word{n}" for n in range(40))
DOCUMENT = "\n\n".join(
    f"Section {n}. " + "The handbook describes the procedure in detail. " * 20
    for n in range(4)
)


async def eventually(check: Callable[[], bool], within_s: float = 20.0) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, f"not true within {within_s} s"
        await asyncio.sleep(0.05)


async def read_stream(
    client: httpx.AsyncClient, tokens: list[str]
) -> list[tuple[str, dict[str, Any]]]:
    lines = []
    async with client.stream(
        "POST", "/api/chat/stream", json={"message": "a long story, please"}
    ) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():  # fails if the body is cut
            lines.append(line)
            if line == "event: token":
                tokens.append(line)
    return sse_events(lines)


async def chat(client: httpx.AsyncClient, message: str) -> httpx.Response:
    return await client.post("/api/chat", json={"message": message})


async def test_sigterm_lets_turns_finish_or_end_clearly_and_releases_the_document(
    faults_database_url: str, fake_provider: FaultyOpenAI
) -> None:
    fake_provider.reply = LONG_REPLY
    fake_provider.stream_delay_s = 0.3  # the whole stream would take 12 s
    fake_provider.chat_delays = {"quick": 1.0, "slow": 20.0}
    fake_provider.hold_batch_embeddings = True
    server = FaultServer(
        faults_database_url,
        **openai_env(
            fake_provider,
            LLM_TIMEOUT_S="60",
            SHUTDOWN_GRACE_S=str(GRACE_S),
            WORKER_POLL_INTERVAL_S="0.5",
        ),
    )
    server.start()
    try:
        [(document_id,)] = server.query(
            "insert into documents (title, content) values ('Handbook', %s) "
            "returning id",
            DOCUMENT,
        )
        _, headers = server.new_user()
        async with httpx.AsyncClient(
            base_url=server.base_url, headers=headers, timeout=60
        ) as client:
            tokens: list[str] = []
            stream = asyncio.create_task(read_stream(client, tokens))
            quick = asyncio.create_task(chat(client, "quick question"))
            slow = asyncio.create_task(chat(client, "slow question"))
            completions = "/v1/chat/completions"
            await eventually(
                lambda: (
                    len(tokens) >= 2
                    and len(fake_provider.requests_to(completions)) == 3
                    and server.query(
                        "select status from documents where id = %s", document_id
                    )
                    == [("processing",)]
                )
            )
            server.terminate()
            events, quick_answer, slow_answer = await asyncio.gather(
                stream, quick, slow
            )
        exit_code = await asyncio.to_thread(server.wait, GRACE_S + 15)
    finally:
        server.kill()
        log = server.log()
        server.stop()

    assert exit_code is not None  # it stopped by itself after the grace period
    # Ended streams and answered turns are not errors of the application.
    assert "Exception in ASGI application" not in log
    assert quick_answer.status_code == 200
    assert quick_answer.json()["ai_response"] == LONG_REPLY

    assert slow_answer.status_code == 503
    assert slow_answer.json()["error"] == "service_unavailable"
    assert slow_answer.headers["retry-after"]

    names = [name for name, _ in events]
    assert names[:2] == ["meta", "sources"]
    assert set(names[2:-1]) == {"token"}
    assert names[-1] == "error"
    assert events[-1][1]["code"] == "service_unavailable"

    rows = server.query(
        "select u.content, array(select m.role from messages m "
        "where m.chat_room_id = u.chat_room_id order by m.id) "
        "from messages u where u.role = 'user'"
        " and u.content in ('quick question', 'slow question', "
        "'a long story, please')"
    )
    stored = {str(content): roles for content, roles in rows}
    assert stored == {
        "quick question": ["user", "assistant"],
        "slow question": ["user"],
        "a long story, please": ["user"],
    }
    # The worker gave the document back at once; the attempt does not count.
    released = server.query(
        "delete from documents where id = %s returning status, attempts, chunk_count",
        document_id,
    )
    assert released == [("pending", 0, 0)]
