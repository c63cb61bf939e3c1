"""LangSmith tracing against a recorder on 127.0.0.1 speaking the ingest API."""

import time
from collections.abc import Iterator
from typing import Any, cast

import langsmith.run_helpers
import langsmith.utils
import pytest

from src.domain.entity.knowledge import RetrievedChunk
from src.domain.service.prompt_builder import build_chat_messages
from src.gateway.llm_gateway import LLMGateway
from src.infra.llm.chat_models import OfflineChatModels
from src.infra.tracing import Tracing
from src.settings import Settings
from tests.support.langsmith_recorder import LangSmithRecorder

METADATA = {
    "room_id": 12,
    "message_id": 34,
    "user_id": "6f1c0a4e-0000-4000-8000-000000000001",
    "persona": "Ada",
}
SOURCE = RetrievedChunk(
    chunk_id=5,
    document_id=2,
    title="Guide",
    content="Restart the router to restore the connection.",
    heading_path="Network",
    score=0.7,
)
WAIT_S = 10.0


def tracing_to(recorder: LangSmithRecorder) -> Tracing:
    return Tracing.from_settings(
        Settings(
            _env_file=None,
            langsmith_tracing=True,
            langsmith_endpoint=recorder.url,
            langsmith_api_key="lsv2-test-key",
            langsmith_project="rag-chat-tests",
        )
    )


def wait_for_run(
    recorder: LangSmithRecorder, name: str, *, field: str = "end_time"
) -> dict[str, Any]:
    """Polls: the SDK sends from a background thread (no timing is asserted)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        runs = [r for r in recorder.named(name) if field in r]
        if runs:
            return runs[0]
        time.sleep(0.02)
    raise AssertionError(f"no {name!r} run with {field!r} arrived: {recorder.runs}")


async def test_a_chat_turn_is_traced_with_its_metadata_and_a_retrieval_child(
    recorder: LangSmithRecorder,
) -> None:
    tracing = tracing_to(recorder)
    gateway = LLMGateway(OfflineChatModels())

    known_at_start = {k: v for k, v in METADATA.items() if k != "message_id"}
    async with tracing.chat_trace(
        metadata=known_at_start, inputs={"question": "internet down?"}
    ) as run:
        run.add_metadata(message_id=METADATA["message_id"])
        async with tracing.retrieval_span(
            query="internet down?", metadata={"k": 5}
        ) as span:
            span.record_sources([SOURCE])
        prompt = build_chat_messages(
            system_prompt="You are Ada.",
            question="How do I restore the connection?",
            sources=[SOURCE],
            history=[],
            history_token_budget=100,
        )
        generation = await gateway.generate(prompt, model=None, temperature=None)
        run.record(answer=generation.text)
    await tracing.aclose()

    chat = wait_for_run(recorder, "chat", field="outputs")
    retrieval = wait_for_run(recorder, "retrieval", field="outputs")
    llm = wait_for_run(recorder, "ExtractiveChatModel", field="outputs")
    assert chat["id"] == str(run.id)
    assert chat.get("parent_run_id") is None
    assert chat["extra"]["metadata"] | METADATA == chat["extra"]["metadata"]
    assert chat["session_name"] == "rag-chat-tests"
    assert chat["outputs"]["answer"] == generation.text
    assert retrieval["parent_run_id"] == chat["id"]
    assert retrieval["run_type"] == "retriever"
    assert retrieval["inputs"] == {"query": "internet down?"}
    assert retrieval["outputs"]["documents"][0]["metadata"]["chunk_id"] == 5
    assert llm["parent_run_id"] == chat["id"]
    assert llm["trace_id"] == chat["id"]
    assert recorder.api_keys == {"lsv2-test-key"}


async def test_a_failed_turn_is_traced_with_its_error(
    recorder: LangSmithRecorder,
) -> None:
    tracing = tracing_to(recorder)

    with pytest.raises(RuntimeError, match="provider down"):
        async with tracing.chat_trace(metadata=METADATA):
            raise RuntimeError("provider down")
    await tracing.aclose()

    chat = wait_for_run(recorder, "chat", field="error")
    assert "provider down" in chat["error"]


async def test_tracing_is_off_by_default_and_then_a_no_op() -> None:
    tracing = Tracing.from_settings(Settings(_env_file=None))

    async with tracing.chat_trace(metadata=METADATA) as run:
        async with tracing.retrieval_span(query="q") as span:
            span.record_sources([SOURCE])
        run.record(answer="a")

    assert not tracing.enabled
    assert run.id is None
    assert span.id is None


@pytest.fixture
def legacy_tracing_variable(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """LangChain's older switch on, which the app's settings do not read."""
    read_once = cast(Any, langsmith.utils.get_env_var)  # an lru_cache
    monkeypatch.setenv("LANGCHAIN_TRACING_V2", "true")
    read_once.cache_clear()
    yield
    monkeypatch.delenv("LANGCHAIN_TRACING_V2")
    read_once.cache_clear()


@pytest.mark.usefixtures("legacy_tracing_variable")
async def test_tracing_off_switches_langchain_tracing_off_inside_a_turn() -> None:
    tracing = Tracing.from_settings(Settings(_env_file=None))
    assert langsmith.utils.tracing_is_enabled()  # LangChain would trace

    async with tracing.chat_trace(metadata=METADATA):
        assert not langsmith.utils.tracing_is_enabled()

    assert langsmith.utils.tracing_is_enabled()


async def test_tracing_off_leaves_the_context_alone_when_nothing_traces() -> None:
    tracing = Tracing.from_settings(Settings(_env_file=None))
    assert not langsmith.utils.tracing_is_enabled()

    async with tracing.chat_trace(metadata=METADATA):
        assert langsmith.run_helpers.get_tracing_context()["enabled"] is None


def test_tracing_to_hosted_langsmith_needs_an_api_key() -> None:
    with pytest.raises(ValueError, match="LANGSMITH_API_KEY"):
        Tracing.from_settings(Settings(_env_file=None, langsmith_tracing=True))
