"""Chunk maintenance: re-embedding chunks of another model (``make reembed``).

Service transaction only (users cannot write chunks).
"""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_COUNT_STALE_SQL = text("""
select count(*) from public.document_chunks where embedding_model <> :model
""")

_STALE_BATCH_SQL = text("""
select id, heading_path, content from public.document_chunks
 where embedding_model <> :model and id > :after_id
 order by id
 limit :limit
""")

_SET_EMBEDDINGS_SQL = text("""
update public.document_chunks c
   set embedding = cast(v.embedding as extensions.vector), embedding_model = :model
  from unnest(cast(:ids as bigint[]), cast(:embeddings as text[])) as v(id, embedding)
 where c.id = v.id
""")

_FINISH_DOCUMENTS_SQL = text("""
update public.documents d
   set embedding_model = :model,
       centroid = (select avg(c.embedding) from public.document_chunks c
                    where c.document_id = d.id)
 where d.embedding_model is distinct from :model
   and d.chunk_count > 0
   and not exists (
     select 1 from public.document_chunks c
      where c.document_id = d.id and c.embedding_model <> :model
   )
""")

# ts_config holds the configuration's name as regconfig prints it (the
# document_chunks_set_fts trigger writes it so, and recomputes fts).
_SET_TS_CONFIG_SQL = text("""
update public.document_chunks
   set ts_config = cast(:ts_config as text)
 where ts_config <> cast(cast(:ts_config as regconfig) as text)
""")


class ChunkGateway:
    """Bulk reads and writes of ``document_chunks`` by the service."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def count_other_model(self, model: str) -> int:
        """How many chunks were embedded by a model other than ``model``."""
        result = await self._session.execute(_COUNT_STALE_SQL, {"model": model})
        return int(result.scalar_one())

    async def other_model_batch(
        self, model: str, *, after_id: int, limit: int
    ) -> list[Any]:
        """The next chunks (``id, heading_path, content``) of another model."""
        rows = await self._session.execute(
            _STALE_BATCH_SQL, {"model": model, "after_id": after_id, "limit": limit}
        )
        return list(rows.all())

    async def set_embeddings(
        self, ids: Sequence[int], embeddings: Sequence[str], *, model: str
    ) -> None:
        """Store new embeddings (pgvector text form) of ``model`` for chunks."""
        await self._session.execute(
            _SET_EMBEDDINGS_SQL,
            {"ids": list(ids), "embeddings": list(embeddings), "model": model},
        )

    async def finish_documents(self, model: str) -> int:
        """Record ``model`` on documents whose chunks all use it now."""
        result = await self._session.execute(_FINISH_DOCUMENTS_SQL, {"model": model})
        return int(getattr(result, "rowcount", 0))

    async def set_text_search_config(self, ts_config: str) -> int:
        """Rebuild the full-text vectors of chunks made with another configuration."""
        result = await self._session.execute(
            _SET_TS_CONFIG_SQL, {"ts_config": ts_config}
        )
        return int(getattr(result, "rowcount", 0))
