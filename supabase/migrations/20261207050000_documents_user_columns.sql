-- =============================================================================
-- Users write what a document says, not how it is indexed.
--
-- A signed-in user could update any column of their own documents (the
-- policies decide which rows, not which columns): the indexing state the
-- worker keeps (status, error, attempts, next_attempt_at, indexed_hash,
-- embedding_model, chunk_count, centroid) and the trigger's content_hash.
-- Marking a document ready, or forging its centroid, misled only that user's
-- searches; resetting attempts and next_attempt_at made the shared worker
-- retry a failing document at will.
--
-- Column privileges now say what users may write: on insert, the document
-- itself; on update, the same without its owner. The worker, the admins (the
-- dashboard's role) and the service are not affected. Changing content still
-- re-queues the document (documents_prepare), as before.
-- =============================================================================

revoke insert, update on table public.documents from authenticated;

grant insert (
  owner_id, chat_room_id, title, source, mime_type, content, visibility,
  metadata, original, original_sha256
) on table public.documents to authenticated;

grant update (
  chat_room_id, title, source, mime_type, content, visibility, metadata,
  original, original_sha256
) on table public.documents to authenticated;
