-- =============================================================================
-- Knowledge base: documents, document_chunks (pgvector embeddings + full-text
-- search) and the match_document_chunks RPC.
--
-- pgvector lives in the "extensions" schema (Supabase's convention), so types
-- and operator classes are schema-qualified here.
-- Plain SQL only: no psql meta-commands, safe to send as one multi-statement
-- string through a driver.
-- =============================================================================

create extension if not exists vector with schema extensions;

-- -----------------------------------------------------------------------------
-- documents
-- -----------------------------------------------------------------------------
create table public.documents (
  id              bigint generated always as identity primary key,
  owner_id        uuid null references public.general_users (id) on delete cascade,
  chat_room_id    bigint null references public.chat_rooms (id) on delete cascade,
  title           text not null,
  source          text null,
  mime_type       text not null default 'text/plain',
  content         text not null,
  visibility      text not null default 'private',
  status          text not null default 'pending',
  error           text null,
  attempts        int not null default 0,
  next_attempt_at timestamptz not null default now(),
  content_hash    text null,
  indexed_hash    text null,
  embedding_model text null,
  chunk_count     int not null default 0,
  metadata        jsonb not null default '{}'::jsonb,
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now(),
  constraint documents_visibility_check check (visibility in ('private', 'room', 'shared')),
  constraint documents_status_check check (status in ('pending', 'processing', 'ready', 'failed')),
  constraint documents_room_visibility_needs_room check (visibility <> 'room' or chat_room_id is not null)
);

comment on table public.documents is
  'Source documents for retrieval. Admins add shared knowledge by inserting a row with just title and content (owner_id stays NULL, visibility becomes shared); the backend worker then chunks and embeds it (status pending -> processing -> ready/failed). Editing content re-queues it.';
comment on column public.documents.owner_id is
  'Uploader. NULL = the shared knowledge base managed by admins (visible to every signed-in user).';
comment on column public.documents.chat_room_id is
  'Room the document is attached to. Required when visibility = room; such documents are visible to that room''s members and searched only in that room.';
comment on column public.documents.source is
  'Original file name or URL (informational).';
comment on column public.documents.content is
  'Full extracted text (Markdown/plain text). Changing it resets status to pending so it is re-indexed.';
comment on column public.documents.visibility is
  'private (owner only), room (members of chat_room_id) or shared (everyone; forced when owner_id is NULL, not allowed for user-owned rows).';
comment on column public.documents.status is
  'Indexing state: pending (queued), processing (a worker claimed it), ready (chunks searchable), failed (see error; retried until attempts runs out). Only ready documents are searched.';
comment on column public.documents.error is
  'Last indexing error message, NULL when none.';
comment on column public.documents.attempts is
  'Number of indexing attempts made for the current content.';
comment on column public.documents.next_attempt_at is
  'Earliest time a worker may (re)try indexing (backoff after failures).';
comment on column public.documents.content_hash is
  'sha256 (hex) of content, maintained by the documents_prepare trigger.';
comment on column public.documents.indexed_hash is
  'content_hash of the content the current chunks were built from (set by the worker). Differs from content_hash while re-indexing is due.';
comment on column public.documents.embedding_model is
  'Embedding model used for the current chunks.';
comment on column public.documents.chunk_count is
  'Number of chunks currently stored for the document.';
comment on column public.documents.metadata is
  'Free-form JSON (e.g. page count, language, uploader notes).';

create index documents_owner_id_idx on public.documents (owner_id);
create index documents_chat_room_id_idx on public.documents (chat_room_id);
create index documents_work_queue_idx on public.documents (status, next_attempt_at)
  where status in ('pending', 'processing');

-- BEFORE INSERT OR UPDATE: normalise visibility, hash content, re-queue on
-- content change. (Named so it sorts before documents_set_updated_at.)
create or replace function public.documents_prepare()
returns trigger
language plpgsql
set search_path = ''
as $fn$
begin
  if new.owner_id is null then
    new.visibility := 'shared';
  elsif new.visibility = 'shared' then
    raise exception using
      errcode = '42501',
      message = 'only admins can share documents (shared documents have no owner_id)';
  end if;

  new.content_hash := encode(sha256(convert_to(new.content, 'UTF8')), 'hex');

  if tg_op = 'UPDATE'
     and new.content_hash is distinct from old.content_hash
     and new.status is not distinct from old.status then
    new.status := 'pending';
    new.error := null;
    new.attempts := 0;
    new.next_attempt_at := now();
  end if;

  return new;
end
$fn$;

comment on function public.documents_prepare() is
  'BEFORE INSERT/UPDATE trigger on documents: owner_id NULL forces visibility shared; users cannot share; sets content_hash; a content change without an explicit status change re-queues the document (status pending, error NULL, attempts 0).';

create trigger documents_prepare
  before insert or update on public.documents
  for each row execute function public.documents_prepare();

create trigger documents_set_updated_at
  before update on public.documents
  for each row execute function public.set_updated_at();

create or replace function public.documents_notify_pending()
returns trigger
language plpgsql
set search_path = ''
as $fn$
begin
  perform pg_notify('document_pending', new.id::text);
  return null;
end
$fn$;

comment on function public.documents_notify_pending() is
  'AFTER INSERT/UPDATE trigger on documents: NOTIFY document_pending with the document id when its status is pending (wakes the indexing worker).';

create trigger documents_notify_pending
  after insert or update on public.documents
  for each row
  when (new.status = 'pending')
  execute function public.documents_notify_pending();

alter table public.documents enable row level security;

create policy "documents: read own, shared and room documents"
  on public.documents for select
  to authenticated
  using (
    owner_id = (select auth.uid())
    or owner_id is null
    or (visibility = 'room' and public.is_room_member(chat_room_id))
  );

create policy "documents: insert own"
  on public.documents for insert
  to authenticated
  with check (
    owner_id = (select auth.uid())
    and (visibility <> 'room' or public.is_room_member(chat_room_id))
  );

create policy "documents: update own"
  on public.documents for update
  to authenticated
  using (owner_id = (select auth.uid()))
  with check (
    owner_id = (select auth.uid())
    and (visibility <> 'room' or public.is_room_member(chat_room_id))
  );

create policy "documents: delete own"
  on public.documents for delete
  to authenticated
  using (owner_id = (select auth.uid()));

-- -----------------------------------------------------------------------------
-- document_chunks
-- -----------------------------------------------------------------------------
create table public.document_chunks (
  id              bigint generated always as identity primary key,
  document_id     bigint not null references public.documents (id) on delete cascade,
  chunk_index     int not null,
  content         text not null,
  heading_path    text not null default '',
  token_count     int not null,
  embedding       extensions.vector(384) not null,
  embedding_model text not null,
  ts_config       regconfig not null default 'english'::regconfig,
  fts             tsvector generated always as (to_tsvector(ts_config, content)) stored,
  metadata        jsonb not null default '{}'::jsonb,
  created_at      timestamptz not null default now(),
  constraint document_chunks_document_id_chunk_index_key unique (document_id, chunk_index)
);

comment on table public.document_chunks is
  'Retrieval units of a document with their embeddings, written only by the backend''s indexing worker (service session). Readable by users who can read the parent document.';
comment on column public.document_chunks.chunk_index is
  '0-based position of the chunk within its document.';
comment on column public.document_chunks.heading_path is
  'Headings above the chunk joined with " > " (e.g. "Install > Linux"); empty when none.';
comment on column public.document_chunks.token_count is
  'Token count of content (as counted by the backend''s tokenizer).';
comment on column public.document_chunks.embedding is
  '384-dimensional embedding: the size of the offline MiniLM model (all-MiniLM-L6-v2) and of OpenAI text-embedding-3 models requested with dimensions=384, so either backend fits one column. Compare only rows with the same embedding_model.';
comment on column public.document_chunks.embedding_model is
  'Model that produced the embedding; queries must filter on it because vectors of different models are not comparable.';
comment on column public.document_chunks.ts_config is
  'Text-search configuration used for fts (e.g. english, simple).';
comment on column public.document_chunks.fts is
  'Generated tsvector of content for keyword / hybrid search.';

create index document_chunks_embedding_hnsw_idx on public.document_chunks
  using hnsw (embedding extensions.vector_cosine_ops);
create index document_chunks_fts_idx on public.document_chunks using gin (fts);
create index document_chunks_embedding_model_idx on public.document_chunks (embedding_model);

alter table public.document_chunks enable row level security;

-- RLS on documents applies inside the subquery, so this means "the parent
-- document is visible to the caller".
create policy "document_chunks: read chunks of visible documents"
  on public.document_chunks for select
  to authenticated
  using (exists (select 1 from public.documents d where d.id = document_chunks.document_id));

-- No insert/update/delete policies: chunks are written by the service session.

-- -----------------------------------------------------------------------------
-- match_document_chunks (RPC)
-- -----------------------------------------------------------------------------
create or replace function public.match_document_chunks(
  query_embedding extensions.vector(384),
  match_count int default 5,
  filter_chat_room_id bigint default null,
  filter_embedding_model text default null
)
returns table (
  chunk_id     bigint,
  document_id  bigint,
  title        text,
  content      text,
  heading_path text,
  similarity   float8
)
language sql
stable
security invoker
set search_path = public, extensions
set hnsw.iterative_scan = relaxed_order
as $fn$
  select
    c.id,
    c.document_id,
    d.title,
    c.content,
    c.heading_path,
    (1 - (c.embedding <=> query_embedding))::float8
  from public.document_chunks c
  join public.documents d on d.id = c.document_id
  where d.status = 'ready'
    and (filter_embedding_model is null or c.embedding_model = filter_embedding_model)
    and (
      d.visibility = 'shared'
      or (d.visibility = 'private' and d.owner_id = (select auth.uid()))
      or (d.visibility = 'room'
          and filter_chat_room_id is not null
          and d.chat_room_id = filter_chat_room_id)
    )
  order by c.embedding <=> query_embedding
  limit coalesce(match_count, 5)
$fn$;

comment on function public.match_document_chunks(extensions.vector, int, bigint, text) is
  'Vector search over ready documents, nearest first (cosine). Returns chunks of shared documents, the caller''s own private documents, and - only when filter_chat_room_id is given - documents attached to that room. Pass filter_embedding_model (the model that embedded query_embedding) to compare like with like. Runs with the caller''s RLS. similarity = 1 - cosine distance. RPC: POST /rest/v1/rpc/match_document_chunks {"query_embedding": "[...384 floats...]", "match_count": 5, "filter_chat_room_id": 1, "filter_embedding_model": "..."}.';

revoke all on function public.match_document_chunks(extensions.vector, int, bigint, text) from public, anon;
grant execute on function public.match_document_chunks(extensions.vector, int, bigint, text) to authenticated, service_role;

-- Trigger functions are not callable directly; keep them off the API roles.
revoke all on function public.documents_prepare() from public, anon, authenticated;
revoke all on function public.documents_notify_pending() from public, anon, authenticated;

-- -----------------------------------------------------------------------------
-- Privileges (chunks: read-only for signed-in users; written by the service).
-- -----------------------------------------------------------------------------
grant select, insert, update, delete on public.documents to authenticated, service_role;
grant select on public.document_chunks to authenticated;
grant select, insert, update, delete on public.document_chunks to service_role;
grant usage, select on sequence public.documents_id_seq to authenticated, service_role;
grant usage, select on sequence public.document_chunks_id_seq to service_role;
