"""The background worker that turns pending documents into searchable chunks.

Work arrives as ``documents`` rows with status ``pending``: from the API, from
``make ingest``, or inserted by an admin in the Supabase dashboard. The worker
wakes on ``NOTIFY document_pending`` (a dedicated connection LISTENs) and also
polls every ``worker_poll_interval_s``, so a lost notification only delays it.

Per round: claim due documents (``FOR UPDATE SKIP LOCKED``; status
``processing`` with a lease; owners take turns: every owner's first waiting
document before anyone's second, ``documents.queue_turn``) and chunk them until
their chunks reach ``BATCH_CHUNKS``, embed all those chunks together outside
any transaction (many small documents fill one request), then replace each
document's chunks and mark it ``ready`` in a transaction of its own. A document
embeds at most ``worker_chunks_per_turn`` new chunks per claim: a larger one
keeps that slice's vectors (``private.staged_chunk_embeddings``) and goes back
in the queue one turn later, so it cannot hold the worker for everyone else;
its chunks are swapped in whole once none lacks a vector. Rounds run
only in the process that holds the embedder lock
(:mod:`src.infra.embedder_lock`): one process embeds per database, with every
core. A failure (when a batch cannot be embedded, its documents are tried one
by one) schedules a retry with exponential backoff and, after
``worker_max_attempts``, marks it ``failed`` with the error text. A worker that
dies mid-document leaves a ``processing`` row whose lease runs out, and the
next worker takes it again: chunks are only ever swapped whole, so a document
is never half-indexed. The lease is short (``worker_lease_s``) and a heartbeat
renews it every third of that while the document is worked on, so a dead
worker's document is taken over within one lease, and a live worker's never.

An uploaded PDF or HTML file arrives as ``original`` (its bytes) with no text
yet: the worker first extracts the text in a child process bounded in time and
memory (:mod:`src.infra.bounded_parse`), stores it and queues the document
again (outcome ``extracted``); a file that cannot be parsed within the bounds
is ``failed`` at once, with the reason, since retrying cannot help.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal

import psycopg
from fastapi import FastAPI
from langchain_core.embeddings import Embeddings

from src.domain.errors import DomainError
from src.domain.service.chunking import Chunk, chunk_text
from src.domain.service.document_parsing import ParseLimits, fallback_title
from src.gateway.document_index_gateway import (
    ClaimedDocument,
    DocumentIndexGateway,
    DocumentSizeLimits,
    EmbeddedChunk,
)
from src.infra.bounded_parse import ParseBounds, parse_bounded
from src.infra.db_client import Database, libpq_url
from src.infra.embedder_lock import EMBEDDER_LOCK_KEY, EmbedderLock
from src.settings import Settings
from src.worker.chunk_embedder import ChunkEmbedder, EmbeddedDocument, PreparedDocument

logger = logging.getLogger(__name__)

NOTIFY_CHANNEL = "document_pending"
MAX_RETRY_DELAY_S = 3600.0
BATCH_CHUNKS = 256
"""Documents are claimed into one batch until their chunks reach this many."""

Outcome = Literal[
    "ready", "unchanged", "extracted", "partial", "retry", "failed", "lost"
]


UTF8_MAX_BYTES_PER_CHAR = 4


def user_document_limits(settings: Settings) -> DocumentSizeLimits:
    """The most the API lets a user's document hold; larger ones are not indexed.

    The text of a JSON document fits in a request body; a file's is at most
    ``max_upload_bytes`` characters (see ``ParseLimits``). A larger one was
    written past the API (through the Data API) and would hold the worker.
    """
    return DocumentSizeLimits(
        text_bytes=max(
            settings.max_request_bytes,
            UTF8_MAX_BYTES_PER_CHAR * settings.max_upload_bytes,
        ),
        file_bytes=settings.max_upload_bytes,
    )


def parse_bounds(settings: Settings) -> ParseBounds:
    """The time, memory and output limits of parsing one uploaded file."""
    return ParseBounds(
        timeout_s=settings.parse_timeout_s,
        memory_bytes=settings.parse_memory_mb * 2**20,
        limits=ParseLimits.relative_to(settings.max_upload_bytes),
    )


@dataclass(frozen=True)
class IndexResult:
    """What happened to one claimed document.

    Attributes:
        document_id: The document.
        outcome: ``ready`` (chunks replaced), ``unchanged`` (already indexed
            with this content and model: no work), ``extracted`` (an uploaded
            file's text stored, queued for indexing), ``partial`` (a slice of a
            large document embedded and kept, queued one turn later), ``retry``
            (failed, queued again with backoff), ``failed`` (gave up), ``lost``
            (edited, deleted or taken over meanwhile; nothing written).
        chunk_count: Chunks written (ready) or kept (unchanged).
        embedded_count: Chunks that needed the embedding model.
        error: The error text of a failed attempt.
    """

    document_id: int
    outcome: Outcome
    chunk_count: int = 0
    embedded_count: int = 0
    error: str | None = None


class ClaimLostError(Exception):
    """The document changed hands or content while it was being embedded."""


class NothingToIndexError(Exception):
    """The document has no text, or its file cannot be parsed: retrying cannot help."""


class IngestionWorker:
    """Claims pending documents and indexes them, several to one embedding batch."""

    def __init__(
        self,
        *,
        database: Database,
        embeddings: Embeddings,
        embedding_model_name: str,
        settings: Settings,
        lock_key: int = EMBEDDER_LOCK_KEY,
    ) -> None:
        self._database = database
        self._model = embedding_model_name
        self._settings = settings
        self._parse_bounds = parse_bounds(settings)
        self._embedder = ChunkEmbedder(
            database=database,
            embeddings=embeddings,
            model=embedding_model_name,
            chunks_per_turn=settings.worker_chunks_per_turn,
        )
        self._chunked: dict[int, tuple[str, list[Chunk]]] = {}
        """The chunks of the large document being sliced, by id: (its hash, chunks)."""
        url = libpq_url(database.engine.url.render_as_string(hide_password=False))
        self.embedder_lock = EmbedderLock(url, key=lock_key)
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def run_once(
        self, *, only_ids: Sequence[int] | None = None
    ) -> IndexResult | None:
        """Claim and index one due document.

        Args:
            only_ids: Consider only these documents.

        Returns:
            What happened, or None when no document was due.
        """
        claim = await self._claim(only_ids)
        if claim is None:
            return None
        prepared = await self._prepare(claim)
        if isinstance(prepared, IndexResult):
            return prepared
        [result] = await self._index_batch([prepared])
        return result

    async def run_batch(
        self, *, only_ids: Sequence[int] | None = None
    ) -> list[IndexResult]:
        """Claim due documents up to ``BATCH_CHUNKS`` chunks and index them together.

        Their chunks are embedded in the same requests (several small documents
        fill one); each document's chunks are then written in a transaction of
        its own, so a document that fails does not fail the others.

        Args:
            only_ids: Consider only these documents.

        Returns:
            What happened to each claimed document (empty when none was due).
        """
        results: list[IndexResult] = []
        batch: list[PreparedDocument] = []
        claims: list[ClaimedDocument] = []  # renewed while the batch fills
        try:
            async with self._heartbeat(claims):
                while sum(len(p.chunks) for p in batch) < BATCH_CHUNKS:
                    claim = await self._claim(only_ids)
                    if claim is None:
                        break
                    prepared = await self._prepare(claim)
                    if isinstance(prepared, IndexResult):
                        results.append(prepared)
                    else:
                        batch.append(prepared)
                        claims.append(claim)
        except asyncio.CancelledError:
            await self._release(claims)
            raise
        return results + await self._index_batch(batch)

    async def drain(
        self, *, only_ids: Sequence[int] | None = None
    ) -> list[IndexResult]:
        """Index due documents until none is left; the results in order."""
        results: list[IndexResult] = []
        while batch := await self.run_batch(only_ids=only_ids):
            results.extend(batch)
        return results

    async def run_round(self) -> list[IndexResult]:
        """Index every due document, then refresh the text statistics.

        Only while this process holds the embedder lock (:mod:`src.infra.
        embedder_lock`): when another process embeds, the round is skipped and
        its documents are left to it.
        """
        if not await self.embedder_lock.try_acquire():
            logger.debug("another process holds the embedder lock")
            return []
        results = await self.drain()
        await self.refresh_text_statistics()
        return results

    async def refresh_text_statistics(self) -> int:
        """Bring the full-text search's common words up to date with ANALYZE.

        Run after each round of work (:meth:`run_round`): the statistics change
        when Postgres analyzes the chunks (after many were written), and a round
        runs at least every ``worker_poll_interval_s``.

        Returns:
            How many common words were added, changed or removed.
        """
        async with self._database.service_transaction() as session:
            return await DocumentIndexGateway(session).refresh_common_lexemes()

    def start(self) -> None:
        """Start the LISTEN task and ``worker_concurrency`` indexing loops."""
        self._tasks.append(asyncio.create_task(self._listen(), name="ingest-listen"))
        for number in range(self._settings.worker_concurrency):
            task = asyncio.create_task(self._loop(), name=f"ingest-{number}")
            self._tasks.append(task)
        logger.info(
            "ingestion worker started",
            extra={"concurrency": self._settings.worker_concurrency},
        )

    async def stop(self) -> None:
        """Stop every task; documents being indexed are released at once."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.embedder_lock.release()
        logger.info("ingestion worker stopped")

    def wake(self) -> None:
        """Look for work now instead of at the next poll."""
        self._wakeup.set()

    async def _claim(self, only_ids: Sequence[int] | None) -> ClaimedDocument | None:
        async with self._database.service_transaction() as session:
            return await DocumentIndexGateway(session).claim_next(
                lease_s=self._settings.worker_lease_s,
                max_attempts=self._settings.worker_max_attempts,
                only_ids=only_ids,
                user_limits=user_document_limits(self._settings),
            )

    async def _prepare(
        self, claim: ClaimedDocument
    ) -> "IndexResult | PreparedDocument":
        """Chunk a claimed document, or finish it if it needs no embedding.

        Every way out of a finished one leaves the row consistent.
        """
        try:
            async with self._heartbeat([claim]):
                return await self._chunk_or_finish(claim)
        except asyncio.CancelledError:
            await self._release([claim])
            raise
        except Exception as exc:  # noqa: BLE001 - any failure is recorded
            return await self._settle(claim, exc)

    async def _chunk_or_finish(
        self, claim: ClaimedDocument
    ) -> "IndexResult | PreparedDocument":
        if claim.too_large:
            limits = user_document_limits(self._settings)
            raise NothingToIndexError(
                f"too large to index: a document may hold {limits.text_bytes} bytes "
                f"of text, and a file {limits.file_bytes} bytes"
            )
        if claim.original is not None:
            return await self._extract(claim, claim.original)
        if claim.is_indexed_with(self._model):
            async with self._database.service_transaction() as session:
                kept = await DocumentIndexGateway(session).mark_unchanged_ready(
                    claim, model=self._model
                )
            return IndexResult(claim.id, "unchanged" if kept else "lost")
        chunks = await self._chunks_of(claim)
        if not chunks:
            raise NothingToIndexError("the document has no text to index")
        return PreparedDocument(claim, chunks)

    async def _chunks_of(self, claim: ClaimedDocument) -> list[Chunk]:
        """The claimed text cut into chunks (a sliced document's, once per text)."""
        cached = self._chunked.get(claim.id)
        if cached is not None and cached[0] == claim.content_hash:
            return cached[1]
        chunks = await asyncio.to_thread(
            chunk_text,
            claim.content,
            chunk_size=self._settings.chunk_size,
            chunk_overlap=self._settings.chunk_overlap,
            pages=claim.pages,
        )
        if len(chunks) > self._settings.worker_chunks_per_turn:
            # Its next turns need them again: one large document's are kept.
            self._chunked = {claim.id: (claim.content_hash, chunks)}
        return chunks

    async def _index_batch(self, batch: list[PreparedDocument]) -> list[IndexResult]:
        """Embed the documents' chunks together, then write each document alone.

        When embedding the batch fails, each document is tried alone, so only
        the one that cannot be embedded fails.
        """
        if not batch:
            return []
        claims = [p.claim for p in batch]
        try:
            async with self._heartbeat(claims):
                return await self._embed_and_write(batch)
        except asyncio.CancelledError:
            await self._release(claims)
            raise
        except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
            return [await self._settle(batch[0].claim, exc)]

    async def _embed_and_write(
        self, batch: list[PreparedDocument]
    ) -> list[IndexResult]:
        try:
            embedded = await self._embedder.embed(
                batch, renew=lambda: self._renew([p.claim for p in batch])
            )
        except Exception:
            if len(batch) == 1:
                raise
            return [r for p in batch for r in await self._index_batch([p])]
        return [await self._finish(p, embedded[p.claim.id]) for p in batch]

    async def _finish(
        self, prepared: PreparedDocument, embedded: EmbeddedDocument
    ) -> IndexResult:
        """Swap the document's chunks in, or keep its slice for its next turn."""
        if embedded.chunks is None:
            return await self._keep_slice(prepared.claim, embedded)
        self._chunked.pop(prepared.claim.id, None)
        return await self._write(prepared, embedded.chunks, embedded.computed)

    async def _keep_slice(
        self, claim: ClaimedDocument, embedded: EmbeddedDocument
    ) -> IndexResult:
        """Keep this turn's vectors; the document goes back one turn later."""
        try:
            async with self._database.service_transaction() as session:
                kept = await DocumentIndexGateway(session).keep_slice(
                    claim,
                    embedded.to_keep,
                    model=self._model,
                    progress=embedded.progress or 0.0,
                )
        except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
            return await self._settle(claim, exc)
        if not kept:
            return IndexResult(claim.id, "lost")
        return IndexResult(claim.id, "partial", embedded_count=embedded.computed)

    async def _write(
        self, prepared: PreparedDocument, chunks: list[EmbeddedChunk], computed: int
    ) -> IndexResult:
        """Swap one document's chunks in; a failure is that document's alone."""
        claim = prepared.claim
        try:
            async with self._database.service_transaction() as session:
                replaced = await DocumentIndexGateway(session).replace_chunks(
                    claim,
                    chunks,
                    model=self._model,
                    ts_config=self._settings.text_search_config,
                )
        except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
            return await self._settle(claim, exc)
        if not replaced:
            return IndexResult(claim.id, "lost")
        return IndexResult(claim.id, "ready", len(chunks), computed)

    async def _settle(self, claim: ClaimedDocument, exc: Exception) -> IndexResult:
        """The result of a claim that ended in ``exc``, recorded on its row."""
        if isinstance(exc, ClaimLostError):
            return IndexResult(claim.id, "lost")
        permanent = isinstance(exc, NothingToIndexError)
        return await self._record_failure(claim, exc, permanent=permanent)

    async def _extract(self, claim: ClaimedDocument, original: bytes) -> IndexResult:
        """Parse the uploaded file (bounded), store its text and queue it again.

        Raises:
            NothingToIndexError: The file cannot be parsed within the bounds.
        """
        filename = claim.source or "upload"
        try:
            parsed = await parse_bounded(
                filename, original, claim.mime_type, bounds=self._parse_bounds
            )
        except DomainError as exc:
            raise NothingToIndexError(exc.message) from exc
        # A title the uploader chose is kept; the file name's stem gives way to
        # the document's own title.
        title = parsed.title if claim.title == fallback_title(filename) else claim.title
        async with self._database.service_transaction() as session:
            stored = await DocumentIndexGateway(session).store_extracted(
                claim,
                title=title,
                content=parsed.content,
                mime_type=parsed.mime_type,
                metadata=parsed.metadata,
            )
        if not stored:
            raise ClaimLostError
        return IndexResult(claim.id, "extracted")

    @contextlib.asynccontextmanager
    async def _heartbeat(self, claims: list[ClaimedDocument]) -> AsyncIterator[None]:
        """Renew the claims every third of the lease while the block runs."""
        task = asyncio.create_task(self._keep_renewing(claims), name="ingest-lease")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _keep_renewing(self, claims: list[ClaimedDocument]) -> None:
        """Renew ``claims`` (a list the caller may still add to) periodically.

        A claim lost meanwhile is simply not renewed: every later write is
        fenced, so its writer finds out.
        """
        while True:
            await asyncio.sleep(self._settings.worker_lease_s / 3)
            try:
                if claims:
                    await self._renew(claims)
            except Exception:  # the database may be back before the lease ends
                logger.warning(
                    "could not renew %s documents", len(claims), exc_info=True
                )

    async def _renew(self, claims: list[ClaimedDocument]) -> set[int]:
        """Renew the claims in one statement; the ids still held."""
        async with self._database.service_transaction() as session:
            return await DocumentIndexGateway(session).renew_claims(
                claims, lease_s=self._settings.worker_lease_s
            )

    async def _record_failure(
        self, claim: ClaimedDocument, exc: Exception, *, permanent: bool
    ) -> IndexResult:
        error = str(exc) or type(exc).__name__
        delay = min(
            self._settings.worker_retry_base_s * 2 ** max(claim.attempts - 1, 0),
            MAX_RETRY_DELAY_S,
        )
        max_attempts = (
            claim.attempts if permanent else self._settings.worker_max_attempts
        )
        async with self._database.service_transaction() as session:
            status = await DocumentIndexGateway(session).record_failure(
                claim, error=error, max_attempts=max_attempts, retry_in_s=delay
            )
        logger.warning(
            "indexing failed",
            extra={"document_id": claim.id, "attempt": claim.attempts, "error": error},
        )
        if status is None:
            return IndexResult(claim.id, "lost", error=error)
        return IndexResult(
            claim.id, "failed" if status == "failed" else "retry", error=error
        )

    async def _release(self, claims: list[ClaimedDocument]) -> None:
        try:
            async with self._database.service_transaction() as session:
                gateway = DocumentIndexGateway(session)
                for claim in claims:
                    await gateway.release_claim(claim)
        except Exception:  # the lease runs out instead; nothing is half-written
            logger.warning("could not release %s documents", len(claims), exc_info=True)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_round()
            except Exception:  # the database may be down: keep polling
                logger.exception("ingestion loop error")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._wakeup.wait(), self._settings.worker_poll_interval_s
                )
            self._wakeup.clear()

    async def _listen(self) -> None:
        url = libpq_url(self._database.engine.url.render_as_string(hide_password=False))
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    url, autocommit=True
                ) as connection:
                    await connection.execute(f"listen {NOTIFY_CHANNEL}")
                    self.wake()  # work may have arrived while not listening
                    async for _ in connection.notifies():
                        self.wake()
            except (psycopg.Error, OSError) as exc:
                logger.warning("LISTEN connection lost (%s); polling only", exc)
                await asyncio.sleep(self._settings.worker_poll_interval_s)


@contextlib.asynccontextmanager
async def ingestion_worker_running(
    app: FastAPI, settings: Settings, database: Database
) -> AsyncIterator[None]:
    """Run the worker while the block runs, when ``settings.worker_enabled``."""
    if not settings.worker_enabled:
        yield
        return
    worker = IngestionWorker(
        database=database,
        embeddings=app.state.ai.embeddings,
        embedding_model_name=app.state.ai.embedding_model_name,
        settings=settings,
    )
    worker.start()
    app.state.ingestion_worker = worker
    try:
        yield
    finally:
        await worker.stop()
