"""A chat turn is traced to LangSmith (a recorder on 127.0.0.1) with its metadata."""

import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from src.app import create_app
from src.infra.ai_providers import AIProviders
from src.infra.db_client import Database
from src.infra.tracing import Tracing
from src.runtime import runtime
from src.settings import Settings
from tests.factories import auth_headers, mint_token
from tests.support.langsmith_recorder import LangSmithRecorder

WAIT_S = 10.0


@pytest.fixture
async def traced_app(
    settings: Settings,
    database: Database,
    ai_providers: AIProviders,
    recorder: LangSmithRecorder,
) -> AsyncIterator[FastAPI]:
    tracing = Tracing.from_settings(
        Settings(
            _env_file=None,
            langsmith_tracing=True,
            langsmith_endpoint=recorder.url,
            langsmith_api_key="lsv2-test-key",
            langsmith_project="rag-chat-tests",
        )
    )
    traced = dataclasses.replace(ai_providers, tracing=tracing)
    app = create_app(settings)
    async with runtime(app, settings, database, ai=traced):
        yield app
    await tracing.aclose()


def wait_for(recorder: LangSmithRecorder, name: str) -> dict[str, Any]:
    """Polls: the SDK sends from a background thread (no timing is asserted)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        runs = [r for r in recorder.named(name) if "end_time" in r]
        if runs:
            return runs[-1]
        time.sleep(0.05)
    raise AssertionError(f"no finished run named {name!r} arrived")


async def test_a_chat_turn_is_one_trace_with_retrieval_as_a_child(
    traced_app: FastAPI, user: uuid.UUID, recorder: LangSmithRecorder
) -> None:
    transport = httpx.ASGITransport(app=traced_app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://test",
        headers=auth_headers(mint_token(user)),
    ) as client:
        response = await client.post("/api/chat", json={"message": "Trace me"})
    assert response.status_code == 200
    body = response.json()
    traced_app.state.ai.tracing.flush()
    chat = wait_for(recorder, "chat")
    metadata = chat["extra"]["metadata"]
    assert metadata["room_id"] == body["chat_room_id"]
    assert metadata["message_id"] == body["user_message_id"]
    assert metadata["ai_message_id"] == body["ai_message_id"]
    assert metadata["user_id"] == str(user)
    assert metadata["persona"]
    retrieval = wait_for(recorder, "retrieval")
    assert retrieval["parent_run_id"] == chat["id"]
    assert retrieval["inputs"] == {"query": "Trace me", "searched": ["Trace me"]}
