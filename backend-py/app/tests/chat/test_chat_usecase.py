"""ChatUseCase on its own: a real database, fakes only at the LLM edge."""

import uuid

import pytest
from langchain_core.embeddings import Embeddings
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from src.domain.entity.chat import ChatRequest
from src.domain.entity.turn import room_title
from src.domain.errors import (
    LLMProviderError,
    LLMTimeoutError,
    NotFoundError,
    UnprocessableError,
)
from src.gateway.embeddings_gateway import EmbeddingsGateway
from src.infra.ai_providers import AIProviders
from src.infra.db_client import Database
from src.settings import Settings
from src.usecase.chat_usecase import ChatUseCase
from tests.chat.conftest import ScriptedLLM, add_shared_document, chat_use_case


@pytest.fixture
def llm() -> ScriptedLLM:
    return ScriptedLLM(deltas=["Forty", "-two"])


@pytest.fixture
def use_case(
    database: Database,
    user: uuid.UUID,
    ai_providers: AIProviders,
    llm: ScriptedLLM,
    settings: Settings,
) -> ChatUseCase:
    return chat_use_case(
        database=database, user_id=user, ai=ai_providers, settings=settings, llm=llm
    )


async def test_execute_saves_both_messages_and_returns_the_answer(
    use_case: ChatUseCase, connection: AsyncConnection, user: uuid.UUID
) -> None:
    response = await use_case.execute(ChatRequest(message="What is the answer?"))
    assert response.ai_response == "Forty-two"
    rows = await connection.execute(
        text(
            "select role, content, sender_user_id, metadata->>'model' as model "
            "from messages where chat_room_id = :r order by id"
        ),
        {"r": response.chat_room_id},
    )
    assert [tuple(r) for r in rows] == [
        ("user", "What is the answer?", user, None),
        ("assistant", "Forty-two", None, "scripted"),
    ]


async def test_the_prompt_has_the_persona_history_and_question_last(
    use_case: ChatUseCase, llm: ScriptedLLM, admin_persona: int
) -> None:
    first = await use_case.execute(ChatRequest(message="I like tea."))
    await use_case.execute(
        ChatRequest(message="What do I like?", chat_room_id=first.chat_room_id)
    )
    prompt = llm.prompts[-1]
    assert "Answer from the context" in str(prompt[0].content)
    assert any("I like tea." in str(m.content) for m in prompt[1:-1])
    assert str(prompt[-1].content).endswith("What do I like?")


async def test_stream_yields_meta_sources_tokens_done(
    use_case: ChatUseCase,
) -> None:
    turn = await use_case.ask(ChatRequest(message="Stream it"))
    events = [event async for event in use_case.stream(turn)]
    assert [e.event for e in events] == ["meta", "sources", "token", "token", "done"]
    assert events[-1].data["ai_response"] == "Forty-two"
    assert events[0].data["user_message_id"] == turn.user_message_id


async def test_a_timeout_keeps_the_user_message(
    use_case: ChatUseCase, llm: ScriptedLLM, connection: AsyncConnection
) -> None:
    llm.error = LLMTimeoutError("The language model did not answer in time.")
    with pytest.raises(LLMTimeoutError):
        await use_case.execute(ChatRequest(message="Anyone?"))
    roles = await connection.execute(text("select role from messages"))
    assert roles.scalars().all() == ["user"]


class DownEmbeddings(Embeddings):
    """An embedding provider that is down."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:  # noqa: ARG002
        raise LLMProviderError("The embedding provider failed.")

    def embed_query(self, text: str) -> list[float]:  # noqa: ARG002
        raise LLMProviderError("The embedding provider failed.")


@pytest.fixture
def use_case_without_embeddings(
    use_case: ChatUseCase, settings: Settings
) -> ChatUseCase:
    use_case.knowledge = EmbeddingsGateway(DownEmbeddings(), "down", settings)
    return use_case


async def test_a_failed_embedding_keeps_the_user_message_and_fails_the_turn(
    use_case_without_embeddings: ChatUseCase,
    llm: ScriptedLLM,
    connection: AsyncConnection,
) -> None:
    with pytest.raises(LLMProviderError):
        await use_case_without_embeddings.execute(ChatRequest(message="Anyone?"))
    roles = await connection.execute(text("select role from messages"))
    assert roles.scalars().all() == ["user"]
    assert llm.prompts == []


async def test_a_failed_embedding_ends_the_stream_after_meta(
    use_case_without_embeddings: ChatUseCase, connection: AsyncConnection
) -> None:
    turn = await use_case_without_embeddings.ask(ChatRequest(message="Hi"))
    assert turn.retrieval.error is not None
    events = use_case_without_embeddings.stream(turn)
    first = await anext(events)
    with pytest.raises(LLMProviderError):
        await anext(events)
    assert first.event == "meta"
    roles = await connection.execute(text("select role from messages"))
    assert roles.scalars().all() == ["user"]


async def test_ask_saves_the_message_and_retrieves_its_sources(
    use_case: ChatUseCase,
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
        title="Router manual",
        content="Reset the router by holding the pinhole button for ten seconds.",
    )
    turn = await use_case.ask(ChatRequest(message="How do I reset the router?"))
    retrieval = turn.retrieval
    assert retrieval.query == "How do I reset the router?"
    assert retrieval.error is None
    assert retrieval.started_at <= retrieval.ended_at
    assert [chunk.document_id for chunk in turn.sources()] == [document_id]
    saved = await connection.execute(text("select id from messages"))
    assert saved.scalars().all() == [turn.user_message_id]


async def test_an_unknown_room_and_an_overlong_message_are_refused(
    use_case: ChatUseCase, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(NotFoundError):
        await use_case.ask(ChatRequest(message="hi", chat_room_id=424242))
    monkeypatch.setattr(settings, "max_message_chars", 3)
    with pytest.raises(UnprocessableError):
        await use_case.ask(ChatRequest(message="four"))


@pytest.mark.parametrize(
    ("message", "title"),
    [
        ("Short question?", "Short question?"),
        ("first line\nsecond line", "first line"),
        ("word " * 30, "word word word word word word word word word word word word…"),
    ],
)
def test_room_titles_come_from_the_first_line(message: str, title: str) -> None:
    assert room_title(message) == title
