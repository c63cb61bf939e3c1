"""The background worker that turns pending documents into searchable chunks.

Work arrives as ``documents`` rows with status ``pending``: from the API, from
``make ingest``, or inserted by an admin in the Supabase dashboard. The worker
wakes on ``NOTIFY document_pending`` (a dedicated connection LISTENs) and also
polls every ``worker_poll_interval_s``, so a lost notification only delays it.

Per document: claim it (``FOR UPDATE SKIP LOCKED``; status ``processing`` with
a lease), chunk and embed it outside any transaction, then replace its chunks
and mark it ``ready`` in one transaction. A failure schedules a retry with
exponential backoff and, after ``worker_max_attempts``, marks it ``failed`` with
the error text. A worker that dies mid-document leaves a ``processing`` row
whose lease runs out, and the next worker takes it again: chunks are only ever
swapped whole, so a document is never half-indexed. The lease is short
(``worker_lease_s``) and a heartbeat renews it every third of that while the
document is worked on, so a dead worker's document is taken over within one
lease, and a live worker's never.

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
from src.domain.service.chunking import Chunk, chunk_text, embedding_text
from src.domain.service.document_parsing import ParseLimits, fallback_title
from src.gateway.document_index_gateway import (
    ClaimedDocument,
    DocumentIndexGateway,
    EmbeddedChunk,
)
from src.gateway.embeddings_gateway import vector_literal
from src.infra.bounded_parse import ParseBounds, parse_bounded
from src.infra.db_client import Database, libpq_url
from src.settings import Settings

logger = logging.getLogger(__name__)

NOTIFY_CHANNEL = "document_pending"
MAX_RETRY_DELAY_S = 3600.0
EMBED_SLICE = 256
"""Chunks embedded between two lease renewals."""

Outcome = Literal["ready", "unchanged", "extracted", "retry", "failed", "lost"]


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
            file's text stored, queued for indexing), ``retry`` (failed, queued
            again with backoff), ``failed`` (gave up), ``lost`` (edited, deleted
            or taken over meanwhile; nothing written).
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
    """Claims pending documents and indexes them, one at a time per loop."""

    def __init__(
        self,
        *,
        database: Database,
        embeddings: Embeddings,
        embedding_model_name: str,
        settings: Settings,
    ) -> None:
        self._database = database
        self._embeddings = embeddings
        self._model = embedding_model_name
        self._settings = settings
        self._parse_bounds = parse_bounds(settings)
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
        async with self._database.service_transaction() as session:
            claim = await DocumentIndexGateway(session).claim_next(
                lease_s=self._settings.worker_lease_s,
                max_attempts=self._settings.worker_max_attempts,
                only_ids=only_ids,
            )
        return None if claim is None else await self._index_claimed(claim)

    async def drain(
        self, *, only_ids: Sequence[int] | None = None
    ) -> list[IndexResult]:
        """Index due documents until none is left; the results in order."""
        results: list[IndexResult] = []
        while (result := await self.run_once(only_ids=only_ids)) is not None:
            results.append(result)
        return results

    async def run_round(self) -> list[IndexResult]:
        """Index every due document, then refresh the text statistics."""
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
        """Stop every task; a document being indexed is released at once."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        logger.info("ingestion worker stopped")

    def wake(self) -> None:
        """Look for work now instead of at the next poll."""
        self._wakeup.set()

    async def _index_claimed(self, claim: ClaimedDocument) -> IndexResult:
        """Index a claimed document; every way out leaves the row consistent."""
        try:
            async with self._heartbeat(claim):
                return await self._index(claim)
        except asyncio.CancelledError:
            await self._release(claim)
            raise
        except ClaimLostError:
            return IndexResult(claim.id, "lost")
        except NothingToIndexError as exc:
            return await self._record_failure(claim, exc, permanent=True)
        except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
            return await self._record_failure(claim, exc, permanent=False)

    async def _index(self, claim: ClaimedDocument) -> IndexResult:
        if claim.original is not None:
            return await self._extract(claim, claim.original)
        if claim.is_indexed_with(self._model):
            async with self._database.service_transaction() as session:
                kept = await DocumentIndexGateway(session).mark_unchanged_ready(
                    claim, model=self._model
                )
            return IndexResult(claim.id, "unchanged" if kept else "lost")
        chunks = await asyncio.to_thread(
            chunk_text,
            claim.content,
            chunk_size=self._settings.chunk_size,
            chunk_overlap=self._settings.chunk_overlap,
        )
        if not chunks:
            raise NothingToIndexError("the document has no text to index")
        embedded, computed = await self._embed(claim, chunks)
        async with self._database.service_transaction() as session:
            replaced = await DocumentIndexGateway(session).replace_chunks(
                claim,
                embedded,
                model=self._model,
                ts_config=self._settings.text_search_config,
            )
        if not replaced:
            raise ClaimLostError
        return IndexResult(claim.id, "ready", len(embedded), computed)

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
    async def _heartbeat(self, claim: ClaimedDocument) -> AsyncIterator[None]:
        """Renew the claim every third of the lease while the block runs."""
        task = asyncio.create_task(self._keep_renewing(claim), name="ingest-lease")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _keep_renewing(self, claim: ClaimedDocument) -> None:
        while True:
            await asyncio.sleep(self._settings.worker_lease_s / 3)
            try:
                await self._renew(claim)
            except ClaimLostError:
                return  # every later write is fenced: it will find out
            except Exception:  # the database may be back before the lease ends
                logger.warning("could not renew document %s", claim.id, exc_info=True)

    async def _embed(
        self, claim: ClaimedDocument, chunks: list[Chunk]
    ) -> tuple[list[EmbeddedChunk], int]:
        """Embed the chunks, reusing vectors of identical chunks already stored."""
        async with self._database.service_transaction() as session:
            known = await DocumentIndexGateway(session).reusable_embeddings(
                claim, model=self._model
            )
        missing = [c for c in chunks if (c.heading_path, c.content) not in known]
        for start in range(0, len(missing), EMBED_SLICE):
            part = missing[start : start + EMBED_SLICE]
            vectors = await self._embeddings.aembed_documents(
                [embedding_text(c) for c in part]
            )
            for chunk, vector in zip(part, vectors, strict=True):
                known[(chunk.heading_path, chunk.content)] = vector_literal(vector)
            await self._renew(claim)
        embedded = [
            EmbeddedChunk(c, known[(c.heading_path, c.content)]) for c in chunks
        ]
        return embedded, len(missing)

    async def _renew(self, claim: ClaimedDocument) -> None:
        async with self._database.service_transaction() as session:
            held = await DocumentIndexGateway(session).renew_claim(
                claim, lease_s=self._settings.worker_lease_s
            )
        if not held:
            raise ClaimLostError

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

    async def _release(self, claim: ClaimedDocument) -> None:
        try:
            async with self._database.service_transaction() as session:
                await DocumentIndexGateway(session).release_claim(claim)
        except Exception:  # the lease runs out instead; nothing is half-written
            logger.warning("could not release document %s", claim.id, exc_info=True)

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
