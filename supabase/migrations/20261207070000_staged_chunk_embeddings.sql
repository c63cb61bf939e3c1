-- =============================================================================
-- A large document is embedded a slice per turn, so it no longer holds the
-- worker for everyone else.
--
-- The worker embedded a claimed document whole: a 10 MB text file (the upload
-- limit) is some 12,000 chunks, minutes of the offline model, and every other
-- user's documents waited behind it, whatever their turn in the queue. Now the
-- worker embeds at most WORKER_CHUNKS_PER_TURN new chunks of a document per
-- claim. When more remain, it keeps those vectors here and puts the document
-- back in the queue one turn later (queue_turn + 1): each other owner's next
-- document goes first. The next claim embeds only what is not here yet; when
-- nothing is missing the chunks are swapped in whole, as before, and these
-- rows are deleted. A worker that dies mid-document loses at most one slice.
--
-- A vector depends only on the model and the text embedded, so rows are keyed
-- by their text's SHA-256: slices kept before an edit still serve the chunks
-- the edit left unchanged. The schema is private: only the worker (the
-- backend's own role) reads or writes it.
-- =============================================================================

create table private.staged_chunk_embeddings (
  document_id     bigint    not null references public.documents (id) on delete cascade,
  embedding_model text      not null,
  text_sha256     bytea     not null check (octet_length(text_sha256) = 32),
  embedding       extensions.vector not null,
  primary key (document_id, embedding_model, text_sha256)
);

comment on table private.staged_chunk_embeddings is
  'Vectors of a large document''s chunks embedded in earlier turns of the indexing worker (WORKER_CHUNKS_PER_TURN per claim), keyed by the SHA-256 of the text embedded. Deleted when the document''s chunks are swapped in or it fails; deleted with the document.';

revoke all on table private.staged_chunk_embeddings from public;
