-- =============================================================================
-- The full-text index writes through, without a pending list.
--
-- With GIN's fastupdate (the default), new chunks first go to a pending list
-- that every search reads in full until (auto)vacuum merges it into the
-- index. Right after ingesting a large document that made searches slower
-- (measured at 100,000 chunks: 1,498 pending rows raised the full-text leg's
-- p50 from 1.0 to 2.5 ms) until autovacuum came by. Search latency is what
-- users feel; ingestion runs in the background and pays instead (about
-- 0.45 ms more per chunk, with the HNSW index's ~2 ms).
-- =============================================================================

alter index public.document_chunks_fts_idx set (fastupdate = off);

-- Entries already pending stay searchable and are merged by the next vacuum;
-- merge them now, so the change takes effect at once.
select pg_catalog.gin_clean_pending_list('public.document_chunks_fts_idx'::regclass);
