"""One turn's embeddings of the ingestion worker's batch.

The chunks of the documents the worker claimed together are embedded in shared
requests of ``EMBED_SLICE``. A vector already stored for an identical chunk of
the document (its chunks before an edit or a model change) or kept by its
earlier slices (``private.staged_chunk_embeddings``) is reused. A document
embeds at most ``chunks_per_turn`` new chunks per turn: a larger one gets a
slice, which the worker keeps before putting it back in the queue.
"""

import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from langchain_core.embeddings import Embeddings

from src.domain.service.chunking import Chunk, embedding_text
from src.gateway.document_index_gateway import (
    ClaimedDocument,
    DocumentIndexGateway,
    EmbeddedChunk,
)
from src.gateway.embeddings_gateway import vector_literal
from src.infra.db_client import Database

EMBED_SLICE = 256
"""Chunks per embeddings request (the claims are renewed after each)."""


@dataclass(frozen=True)
class PreparedDocument:
    """A claimed document cut into chunks, waiting for its embeddings."""

    claim: ClaimedDocument
    chunks: list[Chunk]


@dataclass(frozen=True)
class EmbeddedDocument:
    """What one turn embedded of a document.

    Attributes:
        chunks: Every chunk with its vector; None when some still lack one
            (the document had more than ``worker_chunks_per_turn`` to embed).
        computed: How many vectors the model computed this turn.
        to_keep: When ``chunks`` is None, the vectors to keep for the next
            turns (this turn's, and those reused from the previous chunks), by
            :func:`text_key`.
        progress: When ``chunks`` is None, the share of the document's texts
            with a vector kept so far (0 to 1).
    """

    chunks: list[EmbeddedChunk] | None
    computed: int
    to_keep: dict[bytes, str]
    progress: float | None = None


def text_key(chunk: Chunk) -> bytes:
    """The SHA-256 of the text a chunk's vector is computed from."""
    return hashlib.sha256(embedding_text(chunk).encode()).digest()


class ChunkEmbedder:
    """Embeds a batch's chunks for one turn, reusing the vectors it can."""

    def __init__(
        self,
        *,
        database: Database,
        embeddings: Embeddings,
        model: str,
        chunks_per_turn: int,
    ) -> None:
        """Use the worker's database, model and per-document budget per turn."""
        self._database = database
        self._embeddings = embeddings
        self._model = model
        self._chunks_per_turn = chunks_per_turn

    async def embed(
        self,
        batch: Sequence[PreparedDocument],
        *,
        renew: Callable[[], Awaitable[object]],
    ) -> dict[int, EmbeddedDocument]:
        """Embed this turn's chunks of the batch together.

        Vectors of identical chunks already stored, or kept by the document's
        earlier slices, are reused. A document with more than
        ``worker_chunks_per_turn`` chunks still to embed gets that many now.

        Args:
            batch: The claimed documents, cut into chunks.
            renew: Renews the batch's claims; called after each request.

        Returns:
            Per document id: its chunks with their vectors (or a slice), and
            the vectors computed this turn.
        """
        async with self._database.service_transaction() as session:
            gateway = DocumentIndexGateway(session)
            staged = {
                p.claim.id: await gateway.staged_keys(p.claim, model=self._model)
                for p in batch
            }
            # A sliced document kept its reusable vectors with its first slice.
            known = {
                p.claim.id: {}
                if staged[p.claim.id]
                else await gateway.reusable_embeddings(p.claim, model=self._model)
                for p in batch
            }
        todo = {
            p.claim.id: self._to_embed(p, known[p.claim.id], staged[p.claim.id])
            for p in batch
        }
        missing = [
            (doc, chunk) for doc, (chunks, _) in todo.items() for chunk in chunks
        ]
        fresh: dict[int, dict[bytes, str]] = {p.claim.id: {} for p in batch}
        for start in range(0, len(missing), EMBED_SLICE):
            part = missing[start : start + EMBED_SLICE]
            vectors = await self._embeddings.aembed_documents(
                [embedding_text(c) for _, c in part]
            )
            for (document_id, chunk), vector in zip(part, vectors, strict=True):
                fresh[document_id][text_key(chunk)] = vector_literal(vector)
            await renew()
        return {
            p.claim.id: await self._assembled(
                p,
                known[p.claim.id],
                fresh[p.claim.id],
                progress=todo[p.claim.id][1],
                has_staged=bool(staged[p.claim.id]),
            )
            for p in batch
        }

    def _to_embed(
        self,
        prepared: PreparedDocument,
        known: Mapping[tuple[str, str], str],
        staged: set[bytes],
    ) -> tuple[list[Chunk], float | None]:
        """This turn's chunks to embed (each text once).

        Returns:
            The chunks, and when more remain, the share of the document's
            texts that will have a vector after this turn (else None).
        """
        missing: dict[bytes, Chunk] = {}
        texts: set[bytes] = set()
        for chunk in prepared.chunks:
            key = text_key(chunk)
            texts.add(key)
            if (chunk.heading_path, chunk.content) not in known and key not in staged:
                missing.setdefault(key, chunk)
        budget = self._chunks_per_turn
        if len(missing) <= budget:
            return list(missing.values()), None
        return list(missing.values())[:budget], 1 - (len(missing) - budget) / len(texts)

    async def _assembled(
        self,
        prepared: PreparedDocument,
        known: Mapping[tuple[str, str], str],
        fresh: dict[bytes, str],
        *,
        progress: float | None,
        has_staged: bool,
    ) -> EmbeddedDocument:
        """The document's chunks with their vectors, or a slice when some lack one."""
        if progress is not None:
            reused = {
                text_key(chunk): vector
                for chunk in prepared.chunks
                if (vector := known.get((chunk.heading_path, chunk.content)))
            }
            return EmbeddedDocument(
                chunks=None,
                computed=len(fresh),
                to_keep=reused | fresh,
                progress=progress,
            )
        vectors = dict(fresh)
        if has_staged:
            async with self._database.service_transaction() as session:
                staged = await DocumentIndexGateway(session).staged_embeddings(
                    prepared.claim, model=self._model
                )
            vectors = staged | vectors
        chunks = [
            EmbeddedChunk(
                chunk,
                known.get((chunk.heading_path, chunk.content))
                or vectors[text_key(chunk)],
            )
            for chunk in prepared.chunks
        ]
        return EmbeddedDocument(chunks=chunks, computed=len(fresh), to_keep={})
