"""Hybrid retrieval: pgvector HNSW + Postgres full-text, fused in one statement.

Both legs see only chunks of ready documents the caller may search (own private
documents, the shared knowledge base, and the given room's documents) embedded
by the configured model. The vector leg walks the HNSW index with iterative
scans (``hnsw.iterative_scan``, set for every connection by
``db_client.session_settings``), so filtering out other users' rows does not
starve it of results. The full-text leg is ``match_document_chunks_text``
(migrations 20261122050000 and 060000): it reads at most
``retrieval_text_scan_limit`` matches (through the GIN index for selective
words, from the table when matches are plentiful) before ranking them with
``ts_rank``, so a query of common words stays about as cheap as a rare one, and
it runs as the table owner because row-level security would keep the GIN index
from being used. The two rankings are merged with weighted reciprocal
rank fusion: ``score = w_v / (rrf_k + rank_v) + w_t / (rrf_k + rank_t)``.

The statement runs in the caller's transaction; in a user transaction Postgres
row-level security applies to the vector leg and to the rows returned.
"""

import re
from collections.abc import Sequence
from typing import Any

from langchain_core.embeddings import Embeddings
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from src.domain.entity.knowledge import RetrievedChunk
from src.infra.db_client import DriverStatement
from src.settings import Settings

MAX_TEXT_QUERY_WORDS = 32
_DASH_RUNS = re.compile(r"-{2,}|(?<!\S)-(?!\w)")

# A chunk is searchable when its document is ready, the caller may see it in
# this context, and its vector comes from the configured model.
_SEARCHABLE = """
    c.embedding_model = :model
    and d.status = 'ready'
    and (
      d.visibility = 'shared'
      or (d.visibility = 'private' and d.owner_id = (select auth.uid()))
      or (d.visibility = 'room' and d.chat_room_id = :room_id)
    )
"""

_HYBRID_SEARCH_SQL = text(f"""
with vector_candidates as materialized (
  select c.id, c.embedding <=> cast(cast(:embedding as real[]) as extensions.vector)
         as distance
    from public.document_chunks c
    join public.documents d on d.id = c.document_id
   where {_SEARCHABLE}
   order by c.embedding <=> cast(cast(:embedding as real[]) as extensions.vector)
   limit :candidates
),
vector_ranked as (
  select id, row_number() over (order by distance, id) as rank
    from vector_candidates
),
text_ranked as (
  select t.chunk_id as id, t.rank
    from public.match_document_chunks_text(
      cast(:query as text), cast(:ts_config as regconfig), cast(:model as text),
      cast(:room_id as bigint), cast(:text_scan_limit as integer),
      cast(:candidates as integer)
    ) t
),
fused as (
  select id, sum(score) as score
    from (
      select id, cast(:vector_weight as float8) / (:rrf_k + rank) as score
        from vector_ranked
      union all
      select id, cast(:text_weight as float8) / (:rrf_k + rank) as score
        from text_ranked
    ) legs
   group by id
  having sum(score) > 0
   order by score desc, id
   limit :k
)
select c.id as chunk_id, c.document_id, d.title, c.content, c.heading_path,
       f.score
  from fused f
  join public.document_chunks c on c.id = f.id
  join public.documents d on d.id = c.document_id
 order by f.score desc, c.id
""")  # noqa: S608 - only constant SQL fragments are interpolated
_HYBRID_SEARCH = DriverStatement.of(_HYBRID_SEARCH_SQL)


def full_text_query(query: str) -> str:
    """The query as ``websearch_to_tsquery`` should see it.

    Runs of dashes (``-----`` table rules, ``--option``) would become chains of
    NOT operators that can overflow Postgres' tsquery evaluation stack; a long
    chat message is cut to its first words (an AND of 100 words matches
    nothing anyway).
    """
    cleaned = _DASH_RUNS.sub(" ", query)
    return " ".join(cleaned.split()[:MAX_TEXT_QUERY_WORDS])


def vector_literal(values: Sequence[float]) -> str:
    """The text form of a pgvector value (``[0.1,0.2,...]``)."""
    return "[" + ",".join(f"{float(v):.7g}" for v in values) + "]"


class EmbeddingsGateway:
    """Hybrid search over the chunks the current transaction may read."""

    def __init__(
        self,
        session: AsyncSession,
        embeddings: Embeddings,
        embedding_model_name: str,
        settings: Settings,
    ) -> None:
        self._session = session
        self._embeddings = embeddings
        self._model = embedding_model_name
        self._settings = settings

    async def search(
        self, *, query: str, k: int, chat_room_id: int | None
    ) -> list[RetrievedChunk]:
        """The ``k`` chunks that best match ``query``, best first.

        Args:
            query: The user's words (a question or keywords).
            k: How many chunks to return at most.
            chat_room_id: Include the documents attached to this room.

        Returns:
            The fused hits; ``score`` is the reciprocal-rank-fusion score.
        """
        embedding = await self._embeddings.aembed_query(query)
        return await self.search_with_embedding(
            query=query, embedding=embedding, k=k, chat_room_id=chat_room_id
        )

    async def search_with_embedding(
        self,
        *,
        query: str,
        embedding: Sequence[float],
        k: int,
        chat_room_id: int | None,
    ) -> list[RetrievedChunk]:
        """Like :meth:`search`, with the query's embedding already computed."""
        settings = self._settings
        params: dict[str, Any] = {
            # A float4 array, sent in binary and cast by pgvector: no text
            # to format here and parse there (0.1 ms a search).
            "embedding": list(embedding),
            "query": full_text_query(query),
            "model": self._model,
            "room_id": chat_room_id,
            "ts_config": settings.text_search_config,
            "k": k,
            "candidates": max(k, settings.retrieval_candidates),
            "text_scan_limit": max(k, settings.retrieval_text_scan_limit),
            "vector_weight": settings.retrieval_vector_weight,
            "text_weight": settings.retrieval_text_weight,
            "rrf_k": settings.retrieval_rrf_k,
        }
        rows = await _HYBRID_SEARCH.fetch(self._session, params)
        return [
            RetrievedChunk(
                chunk_id=row["chunk_id"],
                document_id=row["document_id"],
                title=row["title"],
                content=row["content"],
                heading_path=row["heading_path"],
                score=float(row["score"]),
            )
            for row in rows
        ]
