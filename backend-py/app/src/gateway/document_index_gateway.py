"""The indexing side of ``documents``: claims, slices, chunk replacement, failures.

Used by the ingestion worker and the CLIs in a service transaction (chunks have
no write policy for users). Every write after a claim is fenced on the claim
(``status = 'processing'``, the ``attempts`` value the claim set, and the
``content_hash`` that was indexed): a worker whose claim went stale, or whose
document was edited or deleted meanwhile, changes nothing.
"""

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from src.domain.service.chunking import Chunk
from src.domain.service.pages import PageSpan, stored_page_spans

MAX_ERROR_CHARS = 2000
COPY_ROWS = 1000
"""Chunks written per ``COPY`` statement (a document's all in one transaction)."""

_FAIL_EXHAUSTED_SQL = text("""
with failed as (
  update public.documents
     set status = 'failed', index_progress = null,
         error = coalesce(error || ' ', '')
                 || '(indexing did not finish after ' || attempts || ' attempts)'
   where status = 'processing' and next_attempt_at <= now() and attempts >= :max
  returning id
)
delete from private.staged_chunk_embeddings s
 using failed
 where s.document_id = failed.id
""")

_CLAIM_SQL = text("""
update public.documents d
   set status = 'processing',
       attempts = d.attempts + 1,
       next_attempt_at = now() + make_interval(secs => :lease_s)
 -- A scalar subquery runs once (an InitPlan): as a join it may be run again
 -- for every row of the update, and claim every due document at once.
 where d.id = (
    select id
      from public.documents
     where status in ('pending', 'processing')
       and next_attempt_at <= now()
       and (cast(:only_ids as bigint[]) is null or id = any(:only_ids))
     -- Owners take turns: every owner's first waiting document before
     -- anyone's second (queue_turn), then the earliest due.
     order by queue_turn, next_attempt_at, id
     limit 1
       for update skip locked
  )
returning d.id, d.title,
          -- A user's document larger than the API accepts (written through
          -- the Data API) is not read: octet_length reads no TOASTed value.
          case when d.owner_id is null
                 or octet_length(d.content) <= cast(:max_text_bytes as bigint)
               then d.content else '' end as content,
          d.content_hash, d.indexed_hash, d.embedding_model, d.attempts,
          d.source, d.mime_type,
          case when d.owner_id is null
                 or coalesce(octet_length(d.original), 0)
                    <= cast(:max_file_bytes as bigint)
               then d.original end as original,
          d.owner_id is not null
            and (octet_length(d.content) > cast(:max_text_bytes as bigint)
                 or coalesce(octet_length(d.original), 0)
                    > cast(:max_file_bytes as bigint)) as too_large,
          d.metadata -> 'page_spans' as page_spans
""")

_CLAIM_FENCE = """
   id = :id and status = 'processing' and attempts = :attempts
   and content_hash = :content_hash
"""

_RENEW_SQL = text(f"""
update public.documents
   set next_attempt_at = now() + make_interval(secs => :lease_s)
 where {_CLAIM_FENCE}
returning id
""")  # noqa: S608 - constant fragment

_RENEW_MANY_SQL = text("""
update public.documents d
   set next_attempt_at = now() + make_interval(secs => :lease_s)
  from unnest(cast(:ids as bigint[]), cast(:attempts as int[]),
              cast(:hashes as text[])) as c(id, attempts, content_hash)
 where d.id = c.id and d.status = 'processing' and d.attempts = c.attempts
   and d.content_hash = c.content_hash
returning d.id
""")

_STORE_EXTRACTED_SQL = text(f"""
update public.documents
   set content = :content, title = :title, mime_type = :mime_type,
       metadata = metadata || cast(:metadata as jsonb), original = null,
       status = 'pending', error = null, attempts = 0, next_attempt_at = now()
 where {_CLAIM_FENCE}
returning id
""")  # noqa: S608 - constant fragment

_LOCK_CLAIMED_SQL = text(f"""
select id from public.documents where {_CLAIM_FENCE} for update
""")  # noqa: S608 - constant fragment

_MARK_READY_SQL = text("""
update public.documents
   set status = 'ready', error = null, next_attempt_at = now(), index_progress = null,
       indexed_hash = :content_hash, embedding_model = :model,
       chunk_count = (select count(*) from public.document_chunks
                       where document_id = :id),
       centroid = (select avg(embedding) from public.document_chunks
                    where document_id = :id and embedding_model = :model)
 where id = :id
""")

_DELETE_CHUNKS_SQL = text("delete from public.document_chunks where document_id = :id")

_DELETE_STAGED_SQL = text(
    "delete from private.staged_chunk_embeddings where document_id = :id"
)

_STAGED_KEYS_SQL = text("""
select text_sha256 from private.staged_chunk_embeddings
 where document_id = :id and embedding_model = :model
""")

_STAGED_EMBEDDINGS_SQL = text("""
select text_sha256, embedding::text as embedding
  from private.staged_chunk_embeddings
 where document_id = :id and embedding_model = :model
""")

_STAGE_SQL = text("""
insert into private.staged_chunk_embeddings
  (document_id, embedding_model, text_sha256, embedding)
select :id, :model, k, cast(e as extensions.vector)
  from unnest(cast(:keys as bytea[]), cast(:embeddings as text[])) as v(k, e)
on conflict do nothing
""")

# Back in the queue one turn later: every other owner's next document first.
_NEXT_TURN_SQL = text(f"""
update public.documents
   set status = 'pending', attempts = greatest(attempts - 1, 0),
       next_attempt_at = now(), queue_turn = queue_turn + 1,
       index_progress = :progress
 where {_CLAIM_FENCE}
""")  # noqa: S608 - constant fragment

_COPY_COLUMNS = (
    "document_id",
    "chunk_index",
    "content",
    "heading_path",
    "token_count",
    "embedding",
    "embedding_model",
    "ts_config",
    "char_start",
    "char_end",
    "page_start",
    "page_end",
)
# COPY's text format: a backslash, tab, newline or carriage return inside a
# value is written as its backslash escape.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_line(values: Sequence[object]) -> bytes:
    """One row in COPY's text format (None becomes NULL)."""
    fields = ("\\N" if v is None else str(v).translate(_COPY_ESCAPES) for v in values)
    return ("\t".join(fields) + "\n").encode()


class _AsyncLines:
    """COPY data for asyncpg, which reads an async iterable of bytes."""

    def __init__(self, lines: Sequence[bytes]) -> None:
        self._lines = lines

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        for line in self._lines:
            yield line


_RECORD_FAILURE_SQL = text(f"""
update public.documents
   set status = case when attempts >= :max then 'failed' else 'pending' end,
       index_progress = case when attempts >= :max then null else index_progress end,
       error = :error,
       next_attempt_at = now() + make_interval(secs => :retry_in_s)
 where {_CLAIM_FENCE}
returning status
""")  # noqa: S608 - constant fragment

_RELEASE_SQL = text(f"""
update public.documents
   set status = 'pending', attempts = greatest(attempts - 1, 0),
       next_attempt_at = now()
 where {_CLAIM_FENCE}
""")  # noqa: S608 - constant fragment

_REUSABLE_EMBEDDINGS_SQL = text("""
select heading_path, content, embedding::text as embedding
  from public.document_chunks
 where document_id = :id and embedding_model = :model
""")


_FIND_SHARED_SQL = text("""
select id, content_hash, status from public.documents
 where owner_id is null and source = :source
 order by id limit 1
   for update
""")

_INSERT_SHARED_SQL = text("""
insert into public.documents (owner_id, title, content, source, mime_type, metadata)
values (null, :title, :content, :source, :mime_type, cast(:metadata as jsonb))
returning id
""")

_UPDATE_SHARED_SQL = text("""
update public.documents
   set title = :title, content = :content, mime_type = :mime_type,
       metadata = cast(:metadata as jsonb)
 where id = :id
""")

_REQUEUE_FAILED_SQL = text("""
update public.documents
   set status = 'pending', error = null, attempts = 0, next_attempt_at = now()
 where id = :id
""")

_STATUSES_SQL = text("""
select id, status, error, chunk_count from public.documents where id = any(:ids)
""")

_REFRESH_COMMON_LEXEMES_SQL = text(
    "select public.refresh_document_chunk_common_lexemes()"
)

UpsertOutcome = Literal["added", "updated", "unchanged", "requeued"]


@dataclass(frozen=True)
class ClaimedDocument:
    """A document a worker holds until it is ready, failed or released.

    Attributes:
        id: ``documents.id``.
        title: The title (for logs).
        content: The text to index.
        content_hash: The hash of ``content`` (the fence for every later write).
        indexed_hash: The hash the current chunks were built from.
        embedding_model: The model of the current chunks.
        attempts: The attempt number this claim is (its fencing token).
        source: The uploaded file's name, if any.
        mime_type: The type the document was stored as.
        original: The uploaded file, while its text is still to be extracted.
        pages: Where each PDF page lies in ``content`` (empty without pages).
        too_large: A user's document over the claim's size limits; its text
            and file were not read (``content`` empty, ``original`` None).
    """

    id: int
    title: str
    content: str
    content_hash: str
    indexed_hash: str | None
    embedding_model: str | None
    attempts: int
    source: str | None = None
    mime_type: str = "text/plain"
    original: bytes | None = None
    pages: tuple[PageSpan, ...] = ()
    too_large: bool = False

    def is_indexed_with(self, model: str) -> bool:
        """Whether the current chunks already match this content and model."""
        return self.indexed_hash == self.content_hash and self.embedding_model == model

    def fence(self) -> dict[str, object]:
        """The parameters that identify this claim in a statement."""
        return {
            "id": self.id,
            "attempts": self.attempts,
            "content_hash": self.content_hash,
        }


@dataclass(frozen=True)
class DocumentSizeLimits:
    """The most a user's document may hold to be indexed.

    Attributes:
        text_bytes: Bytes of text (UTF-8).
        file_bytes: Bytes of the uploaded file still to parse.
    """

    text_bytes: int
    file_bytes: int


UNLIMITED = DocumentSizeLimits(text_bytes=2**63 - 1, file_bytes=2**63 - 1)


@dataclass(frozen=True)
class EmbeddedChunk:
    """A chunk with its embedding in pgvector's text form."""

    chunk: Chunk
    embedding: str


class DocumentIndexGateway:
    """Queue operations and chunk writes, in a service transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def claim_next(
        self,
        *,
        lease_s: float,
        max_attempts: int,
        only_ids: Sequence[int] | None = None,
        user_limits: DocumentSizeLimits = UNLIMITED,
    ) -> ClaimedDocument | None:
        """Claim the next due document (pending, or processing with a stale claim).

        Stale claims that used up their attempts are marked failed first.

        Args:
            lease_s: How long the claim holds before another worker may take it.
            max_attempts: Attempts after which a stale claim is given up.
            only_ids: Restrict the claim to these documents.
            user_limits: The most a user's document may hold; one over them is
                claimed ``too_large``, unread.

        Returns:
            The claimed document, or None when nothing is due.
        """
        await self._session.execute(_FAIL_EXHAUSTED_SQL, {"max": max_attempts})
        ids = list(only_ids) if only_ids is not None else None
        row = (
            await self._session.execute(
                _CLAIM_SQL,
                {
                    "lease_s": lease_s,
                    "only_ids": ids,
                    "max_text_bytes": user_limits.text_bytes,
                    "max_file_bytes": user_limits.file_bytes,
                },
            )
        ).first()
        if row is None:
            return None
        return ClaimedDocument(
            id=row.id,
            title=row.title,
            content=row.content,
            content_hash=row.content_hash,
            indexed_hash=row.indexed_hash,
            embedding_model=row.embedding_model,
            attempts=row.attempts,
            source=row.source,
            mime_type=row.mime_type,
            original=row.original,
            pages=stored_page_spans(row.page_spans, row.content_hash),
            too_large=bool(row.too_large),
        )

    async def renew_claim(self, claim: ClaimedDocument, *, lease_s: float) -> bool:
        """Extend the claim; False when it was lost (edited, deleted, taken)."""
        params = {**claim.fence(), "lease_s": lease_s}
        return (await self._session.execute(_RENEW_SQL, params)).first() is not None

    async def renew_claims(
        self, claims: Sequence[ClaimedDocument], *, lease_s: float
    ) -> set[int]:
        """Extend several claims in one statement; the ids still held."""
        params = {
            "ids": [c.id for c in claims],
            "attempts": [c.attempts for c in claims],
            "hashes": [c.content_hash for c in claims],
            "lease_s": lease_s,
        }
        return set((await self._session.execute(_RENEW_MANY_SQL, params)).scalars())

    async def store_extracted(
        self,
        claim: ClaimedDocument,
        *,
        title: str,
        content: str,
        mime_type: str,
        metadata: dict[str, Any],
    ) -> bool:
        """Replace an uploaded file by its text and queue the text for indexing.

        The file is dropped (``original`` null), the document is ``pending``
        again with no attempt made (the insert's ``NOTIFY`` wakes a worker).

        Returns:
            False (and nothing written) when the claim no longer holds.
        """
        params = {
            **claim.fence(),
            "title": title,
            "content": content,
            "mime_type": mime_type,
            "metadata": json.dumps(metadata),
        }
        row = (await self._session.execute(_STORE_EXTRACTED_SQL, params)).first()
        return row is not None

    async def reusable_embeddings(
        self, claim: ClaimedDocument, *, model: str
    ) -> dict[tuple[str, str], str]:
        """Embeddings of the current chunks by (heading path, content)."""
        rows = await self._session.execute(
            _REUSABLE_EMBEDDINGS_SQL, {"id": claim.id, "model": model}
        )
        return {(r.heading_path, r.content): r.embedding for r in rows}

    async def staged_keys(self, claim: ClaimedDocument, *, model: str) -> set[bytes]:
        """The text hashes of the vectors kept by earlier slices of the document."""
        rows = await self._session.execute(
            _STAGED_KEYS_SQL, {"id": claim.id, "model": model}
        )
        return {bytes(key) for key in rows.scalars()}

    async def staged_embeddings(
        self, claim: ClaimedDocument, *, model: str
    ) -> dict[bytes, str]:
        """The vectors kept by earlier slices, by the SHA-256 of their text."""
        rows = await self._session.execute(
            _STAGED_EMBEDDINGS_SQL, {"id": claim.id, "model": model}
        )
        return {bytes(r.text_sha256): r.embedding for r in rows}

    async def keep_slice(
        self,
        claim: ClaimedDocument,
        embeddings: Mapping[bytes, str],
        *,
        model: str,
        progress: float,
    ) -> bool:
        """Keep a slice's vectors and put the document back one turn later.

        Args:
            claim: The document, still claimed.
            embeddings: The vectors embedded this turn (pgvector's text form),
                by the SHA-256 of the text embedded.
            model: The embedding model.
            progress: The share of its chunks with a vector kept (0 to 1),
                shown to its owner as ``index_progress``.

        Returns:
            False (and nothing written) when the claim no longer holds.
        """
        if not await self._lock_claimed(claim):
            return False
        await self._session.execute(
            _STAGE_SQL,
            {
                "id": claim.id,
                "model": model,
                "keys": list(embeddings),
                "embeddings": list(embeddings.values()),
            },
        )
        await self._session.execute(
            _NEXT_TURN_SQL, {**claim.fence(), "progress": progress}
        )
        return True

    async def mark_unchanged_ready(self, claim: ClaimedDocument, *, model: str) -> bool:
        """Mark ready without touching the chunks (they match already)."""
        if not await self._lock_claimed(claim):
            return False
        await self._session.execute(_DELETE_STAGED_SQL, {"id": claim.id})
        await self._session.execute(
            _MARK_READY_SQL,
            {"id": claim.id, "content_hash": claim.content_hash, "model": model},
        )
        return True

    async def replace_chunks(
        self,
        claim: ClaimedDocument,
        chunks: Sequence[EmbeddedChunk],
        *,
        model: str,
        ts_config: str,
    ) -> bool:
        """Swap the document's chunks for these and mark it ready, atomically.

        Returns:
            False (and nothing written) when the claim no longer holds, e.g. the
            content was edited during indexing and the document is queued again.
        """
        if not await self._lock_claimed(claim):
            return False
        await self._session.execute(_DELETE_CHUNKS_SQL, {"id": claim.id})
        await self._session.execute(_DELETE_STAGED_SQL, {"id": claim.id})
        await self._copy_chunks(claim.id, chunks, model=model, ts_config=ts_config)
        await self._session.execute(
            _MARK_READY_SQL,
            {"id": claim.id, "content_hash": claim.content_hash, "model": model},
        )
        return True

    async def record_failure(
        self,
        claim: ClaimedDocument,
        *,
        error: str,
        max_attempts: int,
        retry_in_s: float,
    ) -> str | None:
        """Queue a retry after ``retry_in_s``, or fail for good after the last try.

        Returns:
            The new status (``pending`` or ``failed``); None when the claim was lost.
        """
        params = {
            **claim.fence(),
            "error": error[:MAX_ERROR_CHARS],
            "max": max_attempts,
            "retry_in_s": retry_in_s,
        }
        row = (await self._session.execute(_RECORD_FAILURE_SQL, params)).first()
        if row is None:
            return None
        if row.status == "failed":
            await self._session.execute(_DELETE_STAGED_SQL, {"id": claim.id})
        return str(row.status)

    async def release_claim(self, claim: ClaimedDocument) -> None:
        """Give the document back at once (the attempt does not count)."""
        await self._session.execute(_RELEASE_SQL, claim.fence())

    async def upsert_shared(  # noqa: PLR0913 - the columns of a shared document
        self,
        *,
        source: str,
        title: str,
        content: str,
        content_hash: str,
        mime_type: str,
        metadata: dict[str, Any],
    ) -> tuple[int, UpsertOutcome]:
        """Add or update the shared (admin) document loaded from ``source``.

        Unchanged content is left alone (a failed one is queued again); changed
        content is re-queued by the ``documents_prepare`` trigger.
        """
        values = {
            "source": source,
            "title": title,
            "content": content,
            "mime_type": mime_type,
            "metadata": json.dumps(metadata),
        }
        row = (await self._session.execute(_FIND_SHARED_SQL, values)).first()
        if row is None:
            inserted = await self._session.execute(_INSERT_SHARED_SQL, values)
            return int(inserted.scalar_one()), "added"
        if row.content_hash != content_hash:
            await self._session.execute(_UPDATE_SHARED_SQL, {**values, "id": row.id})
            return int(row.id), "updated"
        if row.status == "failed":
            await self._session.execute(_REQUEUE_FAILED_SQL, {"id": row.id})
            return int(row.id), "requeued"
        return int(row.id), "unchanged"

    async def statuses(self, document_ids: Sequence[int]) -> list[Any]:
        """``id, status, error, chunk_count`` of these documents."""
        rows = await self._session.execute(_STATUSES_SQL, {"ids": list(document_ids)})
        return list(rows.all())

    async def refresh_common_lexemes(self) -> int:
        """Copy the words ANALYZE listed, with their share of the chunks.

        ``match_document_chunks_text`` reads them to tell queries of common
        words (5% of the chunks or more: the table in order) from the others
        (the GIN index), and for the idf of its BM25 rank; the average chunk
        length goes to ``document_chunk_text_statistics``. Writes only what
        changed since the last call.

        Returns:
            How many rows of ``document_chunk_common_lexemes`` changed.
        """
        return int(
            (await self._session.execute(_REFRESH_COMMON_LEXEMES_SQL)).scalar_one()
        )

    async def _lock_claimed(self, claim: ClaimedDocument) -> bool:
        row = (await self._session.execute(_LOCK_CLAIMED_SQL, claim.fence())).first()
        return row is not None

    async def _copy_chunks(
        self,
        document_id: int,
        chunks: Sequence[EmbeddedChunk],
        *,
        model: str,
        ts_config: str,
    ) -> None:
        connection = await self._session.connection()
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection  # asyncpg's connection
        rows = [
            _copy_line(
                (
                    document_id,
                    item.chunk.index,
                    item.chunk.content,
                    item.chunk.heading_path,
                    item.chunk.token_count,
                    item.embedding,
                    model,
                    ts_config,
                    *(item.chunk.span or (None, None)),
                    *(item.chunk.pages or (None, None)),
                )
            )
            for item in chunks
        ]
        # Several statements: each chunk is also an HNSW insert, and a large
        # document's chunks in one COPY outlast the statement timeout.
        for start in range(0, len(rows), COPY_ROWS):
            await driver.copy_to_table(
                "document_chunks",
                schema_name="public",
                columns=list(_COPY_COLUMNS),
                source=_AsyncLines(rows[start : start + COPY_ROWS]),
                format="text",
            )
