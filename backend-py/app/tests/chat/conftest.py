"""Chat test helpers: fake LLM gateways for failure paths, personas, documents."""

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from langchain_core.messages import BaseMessage
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from src.controller.dependencies import get_llm_gateway
from src.domain.entity.user import CurrentUser
from src.domain.errors import DomainError
from src.gateway.embeddings_gateway import EmbeddingsGateway
from src.gateway.llm_gateway import (
    Generation,
    LLMGateway,
    StreamEvent,
    TokenUsage,
    TraceRun,
)
from src.gateway.rate_limit_gateway import RateLimitGateway
from src.infra.ai_providers import AIProviders
from src.infra.db_client import Database
from src.infra.tracing import Tracing
from src.settings import Settings
from src.usecase.chat_usecase import ChatUseCase
from src.worker.ingestion_worker import IngestionWorker
from tests.factories import auth_headers, create_user, mint_token


class ScriptedLLM:
    """An LLM gateway that answers with a script, or fails after some deltas.

    Like the offline model, it does not rewrite follow-up questions.
    """

    rewrites_questions = False

    def __init__(
        self,
        deltas: Sequence[str] = ("Hello", " there"),
        error: DomainError | None = None,
    ) -> None:
        self.deltas = list(deltas)
        self.error = error
        self.prompts: list[list[BaseMessage]] = []
        self.options: list[dict[str, Any]] = []

    def _generation(self) -> Generation:
        text_ = "".join(self.deltas)
        return Generation(
            text=text_,
            model="scripted",
            usage=TokenUsage(input_tokens=3, output_tokens=2, total_tokens=5),
            latency_ms=1,
        )

    async def generate(
        self, messages: Sequence[BaseMessage], **options: Any
    ) -> Generation:
        self.prompts.append(list(messages))
        self.options.append(options)
        if self.error is not None:
            raise self.error
        return self._generation()

    def trace(
        self, *, metadata: Mapping[str, Any], inputs: Mapping[str, Any]
    ) -> AbstractAsyncContextManager[TraceRun]:
        """No tracing, as with LangSmith off."""
        return Tracing(None, project="").chat_trace(metadata=metadata, inputs=inputs)

    async def stream(
        self, messages: Sequence[BaseMessage], **options: Any
    ) -> AsyncIterator[StreamEvent]:
        self.prompts.append(list(messages))
        self.options.append(options)
        for delta in self.deltas:
            yield StreamEvent(delta=delta)
        if self.error is not None:
            raise self.error
        yield StreamEvent(generation=self._generation())


def chat_use_case(
    *,
    database: Database,
    user_id: uuid.UUID,
    ai: AIProviders,
    settings: Settings,
    llm: ScriptedLLM | LLMGateway | None = None,
) -> ChatUseCase:
    """The chat use case for ``user_id``, wired as the controller wires it."""
    caller = CurrentUser(
        id=user_id,
        email=None,
        role="authenticated",
        claims={"sub": str(user_id), "role": "authenticated"},
    )
    return ChatUseCase(
        user=caller,
        as_caller=partial(database.user_transaction, caller.claims),
        as_service=database.answer_statement,
        knowledge=EmbeddingsGateway(ai.embeddings, ai.embedding_model_name, settings),
        llm=llm or ScriptedLLM(),  # type: ignore[arg-type]
        limits=RateLimitGateway(database),
        settings=settings,
    )


@pytest.fixture
def scripted_llm(app: FastAPI) -> ScriptedLLM:
    """Replace the app's LLM gateway with a scripted one (set ``.error`` to fail)."""
    llm = ScriptedLLM()
    app.dependency_overrides[get_llm_gateway] = lambda: llm
    return llm


@pytest.fixture
async def admin_persona(connection: AsyncConnection) -> int:
    """The admins' default persona (what seed.sql provides in development)."""
    result = await connection.execute(
        text(
            "insert into virtual_users (name, system_prompt, is_default) "
            "values ('Assistant', 'Answer from the context; cite [n].', true) "
            "returning id"
        )
    )
    return int(result.scalar_one())


@pytest.fixture
async def other_user(connection: AsyncConnection) -> uuid.UUID:
    """A second user."""
    return await create_user(connection)


@pytest.fixture
async def other_client(
    app: FastAPI, other_user: uuid.UUID
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the second user."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://test",
        headers=auth_headers(mint_token(other_user)),
    ) as client:
        yield client


async def add_shared_document(
    connection: AsyncConnection,
    database: Database,
    ai: AIProviders,
    settings: Settings,
    *,
    title: str,
    content: str,
) -> int:
    """Insert a shared document as an admin would and index it now."""
    result = await connection.execute(
        text("insert into documents (title, content) values (:t, :c) returning id"),
        {"t": title, "c": content},
    )
    document_id = int(result.scalar_one())
    worker = IngestionWorker(
        database=database,
        embeddings=ai.embeddings,
        embedding_model_name=ai.embedding_model_name,
        settings=settings,
    )
    results = await worker.drain(only_ids=[document_id])
    assert results, "the document was not indexed"
    return document_id
