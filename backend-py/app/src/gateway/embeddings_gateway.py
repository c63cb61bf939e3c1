"""Hybrid retrieval: pgvector HNSW + Postgres full-text, fused in one statement.

The statement is the database function ``public.hybrid_search`` (last
defined by migration 20261207040000_search_probes_documents). Both legs see
only chunks of ready documents the caller may search (own private documents,
the shared knowledge base, and the given room's documents) embedded by the
configured model. The vector leg (``private.match_document_chunks_vector``)
walks the HNSW index with iterative scans (``hnsw.iterative_scan``, set for
every connection by ``db_client.session_settings``), so filtering out other
users' rows does not starve it of results. The full-text leg
(``private.match_document_chunks_text``) matches chunks holding any of the
question's words (a ``"phrase"`` or a ``-word`` keeps
``websearch_to_tsquery``'s meaning) and reads at most
``retrieval_text_scan_limit`` matches before ranking them with BM25 (word
rarity from the statistics ANALYZE keeps), so a query of common words stays
about as cheap as a rare one. The best ``retrieval_candidates`` of the vector
leg and ``retrieval_text_candidates`` of the full-text leg are merged with
weighted reciprocal rank fusion:
``score = w_v / (rrf_k + rank_v) + w_t / (rrf_k + rank_t)``. Pages too: the
``retrieval_pages`` documents whose centroid (the mean of their chunk
embeddings) is nearest the question each add ``w_p / (rrf_k + rank_p)`` to
the best-scored of their chunks among those candidates.

The statement runs in the caller's transaction. Each leg applies the caller's
visibility itself, reading each candidate's document by its primary key; in a
user transaction row-level security applies to the rows returned.
"""

import re
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.embeddings import Embeddings
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from src.domain.entity.knowledge import RetrievedChunk
from src.settings import Settings

MAX_TEXT_QUERY_WORDS = 32
_DASH_RUNS = re.compile(r"-{2,}|(?<!\S)-(?!\w)")

_HYBRID_SEARCH_SQL = text("""
select chunk_id, document_id, title, content, heading_path, score,
       char_start, char_end, page_start, page_end
  from public.hybrid_search(
    query_embedding => cast(:embedding as extensions.vector),
    query_text => cast(:query as text),
    filter_embedding_model => cast(:model as text),
    filter_chat_room_id => cast(:room_id as bigint),
    text_search_config => cast(:ts_config as text),
    match_count => cast(:k as integer),
    candidate_count => cast(:candidates as integer),
    text_scan_limit => cast(:text_scan_limit as integer),
    vector_weight => cast(:vector_weight as float8),
    text_weight => cast(:text_weight as float8),
    rrf_k => cast(:rrf_k as integer),
    text_candidate_count => cast(:text_candidates as integer),
    page_weight => cast(:page_weight as float8),
    page_count => cast(:pages as integer)
  )
""")


def full_text_query(query: str) -> str:
    """The query as ``websearch_to_tsquery`` should see it.

    Runs of dashes (``-----`` table rules, ``--option``) would become chains of
    NOT operators that can overflow Postgres' tsquery evaluation stack; a long
    chat message is cut to its first words (the leg matches any of them, and
    each word is one more term to look up and rank).
    """
    cleaned = _DASH_RUNS.sub(" ", query)
    return " ".join(cleaned.split()[:MAX_TEXT_QUERY_WORDS])


def vector_literal(values: Sequence[float]) -> str:
    """The text form of a pgvector value (``[0.1,0.2,...]``)."""
    return "[" + ",".join(f"{float(v):.7g}" for v in values) + "]"


class EmbeddingsGateway:
    """Query embeddings and hybrid search over the chunks a transaction may read.

    Built once per request from the providers chosen at start-up. Embedding a
    query needs no database connection, so the search takes the transaction
    per call: a chat turn embeds first, then opens its transaction.
    """

    def __init__(
        self, embeddings: Embeddings, embedding_model_name: str, settings: Settings
    ) -> None:
        self._embeddings = embeddings
        self._model = embedding_model_name
        self._settings = settings

    async def embed(self, query: str) -> list[float]:
        """The query's embedding, by the configured model.

        Raises:
            DomainError: The embedding provider failed (502/504).
        """
        return await self._embeddings.aembed_query(query)

    async def search(
        self, session: AsyncSession, *, query: str, k: int, chat_room_id: int | None
    ) -> list[RetrievedChunk]:
        """The ``k`` chunks that best match ``query``, best first.

        Args:
            session: The caller's transaction (row-level security applies).
            query: The user's words (a question or keywords).
            k: How many chunks to return at most.
            chat_room_id: Include the documents attached to this room.

        Returns:
            The fused hits; ``score`` is the reciprocal-rank-fusion score.
        """
        embedding = await self.embed(query)
        return await self.search_with_embedding(
            session, query=query, embedding=embedding, k=k, chat_room_id=chat_room_id
        )

    async def search_with_embedding(
        self,
        session: AsyncSession,
        *,
        query: str,
        embedding: Sequence[float],
        k: int,
        chat_room_id: int | None,
    ) -> list[RetrievedChunk]:
        """Like :meth:`search`, with the query's embedding already computed."""
        params = search_arguments(
            self._settings,
            query=query,
            embedding=embedding,
            model=self._model,
            k=k,
            chat_room_id=chat_room_id,
        )
        return await hybrid_search(session, params)


async def hybrid_search(
    session: AsyncSession, arguments: Mapping[str, Any]
) -> list[RetrievedChunk]:
    """Run ``public.hybrid_search`` with :func:`search_arguments`, best first."""
    result = await session.execute(_HYBRID_SEARCH_SQL, dict(arguments))
    return [retrieved_chunk(row) for row in result.mappings()]


def search_arguments(  # noqa: PLR0913 - keyword-only, one per search input
    settings: Settings,
    *,
    query: str,
    embedding: Sequence[float],
    model: str,
    k: int,
    chat_room_id: int | None,
) -> dict[str, Any]:
    """The arguments of ``public.hybrid_search`` for a query, by bind name."""
    return search_settings(settings, model=model, k=k) | {
        "embedding": embedding,  # sent in pgvector's binary format
        "query": full_text_query(query),
        "room_id": chat_room_id,
    }


def search_settings(settings: Settings, *, model: str, k: int) -> dict[str, Any]:
    """The arguments of ``public.hybrid_search`` that every query shares."""
    return {
        "model": model,
        "ts_config": settings.text_search_config,
        "k": k,
        "candidates": max(k, settings.retrieval_candidates),
        "text_candidates": max(k, settings.retrieval_text_candidates),
        "text_scan_limit": max(k, settings.retrieval_text_scan_limit),
        "vector_weight": settings.retrieval_vector_weight,
        "text_weight": settings.retrieval_text_weight,
        "rrf_k": settings.retrieval_rrf_k,
        "page_weight": settings.retrieval_page_weight,
        "pages": settings.retrieval_pages,
    }


def retrieved_chunk(row: Mapping[Any, Any]) -> RetrievedChunk:
    """A ``hybrid_search`` result row as the domain's chunk."""
    return RetrievedChunk(
        chunk_id=row["chunk_id"],
        document_id=row["document_id"],
        title=row["title"],
        content=row["content"],
        heading_path=row["heading_path"],
        score=float(row["score"]),
        span=_pair(row["char_start"], row["char_end"]),
        pages=_pair(row["page_start"], row["page_end"]),
    )


def _pair(first: int | None, last: int | None) -> tuple[int, int] | None:
    return None if first is None or last is None else (first, last)
