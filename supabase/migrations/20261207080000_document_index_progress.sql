-- =============================================================================
-- How far the indexing of a large document has come.
--
-- The worker embeds a large document a slice per turn
-- (20261207070000_staged_chunk_embeddings): minutes for a 10 MB upload, while
-- its status stays pending. index_progress is the share of its chunks that
-- have a vector so far, written by the worker after each slice and cleared
-- when the document is ready or failed. Users read it (GET /api/documents)
-- and cannot write it: their column privileges on documents list what they
-- may write (20261207050000_documents_user_columns).
-- =============================================================================

alter table public.documents
  add column index_progress real
    check (index_progress >= 0 and index_progress <= 1);

comment on column public.documents.index_progress is
  'While a large document is indexed a slice per turn: the share of its chunks embedded so far (0 to 1). NULL otherwise. Written by the indexing worker.';
