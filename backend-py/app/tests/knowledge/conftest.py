"""Fixtures of the knowledge tests: the real offline embeddings, a worker, helpers."""

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from src.domain.entity.knowledge import RetrievedChunk
from src.gateway.embeddings_gateway import EmbeddingsGateway, vector_literal
from src.infra.ai_providers import AIProviders
from src.infra.db_client import Database
from src.infra.embeddings.minilm import MiniLMEmbeddings
from src.settings import Settings
from src.worker.ingestion_worker import IngestionWorker


@pytest.fixture(scope="session")
def embeddings(ai_providers: AIProviders) -> MiniLMEmbeddings:
    """The offline MiniLM model of the session's providers (loaded once)."""
    assert isinstance(ai_providers.embeddings, MiniLMEmbeddings)
    return ai_providers.embeddings


@pytest.fixture(scope="session")
def knowledge_settings(settings: Settings) -> Settings:
    """Test settings with immediate retries and small chunks."""
    return settings.model_copy(
        update={
            "worker_retry_base_s": 0.0,
            "worker_max_attempts": 3,
            "chunk_size": 400,
            "chunk_overlap": 40,
        }
    )


@dataclass(frozen=True)
class Knowledge:
    """What a retrieval test works with, in one fixture."""

    connection: AsyncConnection
    database: Database
    worker: IngestionWorker
    embeddings: MiniLMEmbeddings
    settings: Settings

    def search_as(
        self, user_id: uuid.UUID, settings: Settings | None = None
    ) -> AbstractAsyncContextManager["SearchIn"]:
        """Searches in ``user_id``'s transaction."""
        return retrieval_as(
            self.database, user_id, self.embeddings, settings or self.settings
        )


@pytest.fixture
def kb(
    connection: AsyncConnection,
    database: Database,
    worker: IngestionWorker,
    embeddings: MiniLMEmbeddings,
    knowledge_settings: Settings,
) -> Knowledge:
    """The connection, database, worker, model and settings of a test."""
    return Knowledge(connection, database, worker, embeddings, knowledge_settings)


@pytest.fixture
def worker(
    database: Database, embeddings: MiniLMEmbeddings, knowledge_settings: Settings
) -> IngestionWorker:
    """A worker on the test's transaction, driven by the test (never started)."""
    return IngestionWorker(
        database=database,
        embeddings=embeddings,
        embedding_model_name=embeddings.model_name,
        settings=knowledge_settings,
    )


async def insert_document(
    connection: AsyncConnection,
    *,
    owner_id: uuid.UUID | None,
    title: str,
    content: str,
    visibility: str = "private",
    chat_room_id: int | None = None,
) -> int:
    """Insert a document as the service (as an admin in the dashboard would)."""
    result = await connection.execute(
        text(
            "insert into public.documents "
            "(owner_id, title, content, visibility, chat_room_id) "
            "values (:owner, :title, :content, :visibility, :room) returning id"
        ),
        {
            "owner": owner_id,
            "title": title,
            "content": content,
            "visibility": visibility,
            "room": chat_room_id,
        },
    )
    return int(result.scalar_one())


async def document_row(connection: AsyncConnection, document_id: int) -> Any:
    """The document's indexing columns."""
    result = await connection.execute(
        text(
            "select status, error, attempts, chunk_count, embedding_model, "
            "indexed_hash, content_hash from public.documents where id = :id"
        ),
        {"id": document_id},
    )
    return result.one()


async def chunk_rows(connection: AsyncConnection, document_id: int) -> list[Any]:
    """The document's chunks in order."""
    result = await connection.execute(
        text(
            "select id, chunk_index, content, heading_path, token_count, "
            "embedding_model from public.document_chunks "
            "where document_id = :id order by chunk_index"
        ),
        {"id": document_id},
    )
    return list(result.all())


async def insert_chunks(
    connection: AsyncConnection,
    document_id: int,
    rows: Sequence[tuple[str, Sequence[float]]],
    *,
    model: str,
) -> None:
    """Insert chunks with given vectors and mark the document ready."""
    for index, (content, vector) in enumerate(rows):
        await connection.execute(
            text(
                "insert into public.document_chunks (document_id, chunk_index, "
                "content, token_count, embedding, embedding_model) values "
                "(:doc, :index, :content, 1, cast(:vector as extensions.vector), "
                ":model)"
            ),
            {
                "doc": document_id,
                "index": index,
                "content": content,
                "vector": vector_literal(vector),
                "model": model,
            },
        )
    await connection.execute(
        text(
            "update public.documents set status = 'ready', chunk_count = :n, "
            "embedding_model = :model, indexed_hash = content_hash where id = :id"
        ),
        {"n": len(rows), "model": model, "id": document_id},
    )


def claims_of(user_id: uuid.UUID) -> dict[str, Any]:
    """The JWT claims a user transaction runs with."""
    return {"sub": str(user_id), "role": "authenticated"}


@dataclass(frozen=True)
class SearchIn:
    """An :class:`EmbeddingsGateway` with the transaction its searches run in."""

    gateway: EmbeddingsGateway
    session: AsyncSession

    async def search(
        self, *, query: str, k: int, chat_room_id: int | None
    ) -> list[RetrievedChunk]:
        """:meth:`EmbeddingsGateway.search` in this transaction."""
        return await self.gateway.search(
            self.session, query=query, k=k, chat_room_id=chat_room_id
        )

    async def search_with_embedding(
        self,
        *,
        query: str,
        embedding: Sequence[float],
        k: int,
        chat_room_id: int | None,
    ) -> list[RetrievedChunk]:
        """:meth:`EmbeddingsGateway.search_with_embedding` in this transaction."""
        return await self.gateway.search_with_embedding(
            self.session,
            query=query,
            embedding=embedding,
            k=k,
            chat_room_id=chat_room_id,
        )


@asynccontextmanager
async def retrieval_as(
    database: Database,
    user_id: uuid.UUID,
    embeddings: MiniLMEmbeddings,
    settings: Settings,
    *,
    model: str | None = None,
) -> AsyncIterator[SearchIn]:
    """Searches in a user transaction (RLS applies)."""
    async with database.user_transaction(claims_of(user_id)) as session:
        gateway = EmbeddingsGateway(
            embeddings, model or embeddings.model_name, settings
        )
        yield SearchIn(gateway, session)


async def as_user(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Switch a session to the authenticated role of ``user_id``."""
    await session.execute(
        text(
            "select set_config('role', 'authenticated', true), "
            "set_config('request.jwt.claims', :claims, true)"
        ),
        {"claims": json.dumps(claims_of(user_id))},
    )


@asynccontextmanager
async def nested_plans(connection: AsyncConnection) -> AsyncIterator[list[str]]:
    """The plans of the statements run meanwhile, those inside functions too.

    ``EXPLAIN`` of a call shows only the call: ``auto_explain`` logs the plan
    of every statement a function runs, sent to this client as log messages.
    The cached plans are dropped first, so the statements are planned anew,
    under the settings of the moment.
    """
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection  # asyncpg's connection
    plans: list[str] = []

    def collect(_connection: object, message: Any) -> None:
        plans.append(str(message.message))

    await connection.execute(text("load 'auto_explain'"))
    await connection.execute(text("discard plans"))
    await connection.execute(
        text(
            "select set_config('auto_explain.log_min_duration', '0', true), "
            "set_config('auto_explain.log_nested_statements', 'on', true), "
            "set_config('client_min_messages', 'log', true)"
        )
    )
    driver.add_log_listener(collect)
    try:
        yield plans
    finally:
        driver.remove_log_listener(collect)
        await connection.execute(
            text(
                "select set_config('auto_explain.log_min_duration', '-1', true), "
                "set_config('client_min_messages', 'notice', true)"
            )
        )
