-- =============================================================================
-- Knowledge base: documents, document_chunks (pgvector embeddings + full-text
-- search), the match_document_chunks and hybrid_search RPCs, and the
-- full-text leg of hybrid search (schema private).
--
-- Part of the 2026-12-01 baseline (see 20261201000100_users.sql).
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
    or (visibility = 'room' and private.is_room_member(chat_room_id))
  );

create policy "documents: insert own"
  on public.documents for insert
  to authenticated
  with check (
    owner_id = (select auth.uid())
    and (visibility <> 'room' or private.is_room_member(chat_room_id))
  );

create policy "documents: update own"
  on public.documents for update
  to authenticated
  using (owner_id = (select auth.uid()))
  with check (
    owner_id = (select auth.uid())
    and (visibility <> 'room' or private.is_room_member(chat_room_id))
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
  ts_config       text not null default 'english',
  fts             tsvector not null,
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
  'Name of the text-search configuration of fts (e.g. english, simple), as regconfig prints it. Text, not regconfig: a reg* column blocks in-place Postgres upgrades (pg_upgrade).';
comment on column public.document_chunks.fts is
  'tsvector of content in the ts_config configuration, for keyword / hybrid search; kept by the document_chunks_set_fts trigger.';

-- A generated column needs an immutable expression, and text -> regconfig
-- looks the name up in the catalog (stable): a trigger keeps fts instead.
create or replace function public.document_chunks_set_fts()
returns trigger
language plpgsql
set search_path = ''
as $fn$
declare
  config regconfig := new.ts_config::regconfig;  -- an unknown name fails here
begin
  new.ts_config := config::text;
  new.fts := pg_catalog.to_tsvector(config, new.content);
  return new;
end
$fn$;

comment on function public.document_chunks_set_fts() is
  'BEFORE INSERT/UPDATE trigger on document_chunks: checks ts_config (written as regconfig prints it) and sets fts to the tsvector of content in that configuration.';

create trigger document_chunks_set_fts
  before insert or update of content, ts_config, fts on public.document_chunks
  for each row execute function public.document_chunks_set_fts();

create index document_chunks_embedding_hnsw_idx on public.document_chunks
  using hnsw (embedding extensions.vector_cosine_ops);
-- fastupdate off: new chunks go straight into the index instead of a pending
-- list that every search would read until vacuum merges it (search latency
-- is what users feel; ingestion runs in the background and pays instead).
create index document_chunks_fts_idx on public.document_chunks
  using gin (fts) with (fastupdate = off);
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
set search_path = ''
set hnsw.iterative_scan = relaxed_order
as $fn$
  select
    c.id,
    c.document_id,
    d.title,
    c.content,
    c.heading_path,
    (1 - (c.embedding operator(extensions.<=>) query_embedding))::float8
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
  order by c.embedding operator(extensions.<=>) query_embedding
  limit coalesce(match_count, 5)
$fn$;

comment on function public.match_document_chunks(extensions.vector, int, bigint, text) is
  'Vector search over ready documents, nearest first (cosine). Returns chunks of shared documents, the caller''s own private documents, and - only when filter_chat_room_id is given - documents attached to that room. Pass filter_embedding_model (the model that embedded query_embedding) to compare like with like. Runs with the caller''s RLS. similarity = 1 - cosine distance. RPC: POST /rest/v1/rpc/match_document_chunks {"query_embedding": "[...384 floats...]", "match_count": 5, "filter_chat_room_id": 1, "filter_embedding_model": "..."}.';

revoke all on function public.match_document_chunks(extensions.vector, int, bigint, text) from public, anon;
grant execute on function public.match_document_chunks(extensions.vector, int, bigint, text) to authenticated, service_role;

-- Trigger functions are not callable directly; keep them off the API roles.
revoke all on function public.documents_prepare() from public, anon, authenticated;
revoke all on function public.documents_notify_pending() from public, anon, authenticated;
revoke all on function public.document_chunks_set_fts() from public, anon, authenticated;

-- -----------------------------------------------------------------------------
-- document_chunk_common_lexemes: the words of many chunks
-- -----------------------------------------------------------------------------
-- A copy of what ANALYZE sampled (pg_stats.most_common_elems of
-- document_chunks.fts, at least 5%), which the full-text leg reads to tell a
-- query whose matches may be plentiful from a selective one (reading pg_stats
-- itself costs more than the search).
create table public.document_chunk_common_lexemes (
  lexeme    text primary key,
  frequency real not null check (frequency > 0 and frequency <= 1)
);

comment on table public.document_chunk_common_lexemes is
  'Lexemes found in at least 5% of document_chunks.fts, with their share of the chunks, as the last ANALYZE sampled them (pg_stats.most_common_elems). Kept by refresh_document_chunk_common_lexemes(); read by private.match_document_chunks_text to choose between its two scans (the GIN index for a selective query, the table in order for a query of common words). Only affects speed, never results.';

alter table public.document_chunk_common_lexemes enable row level security;
revoke all on table public.document_chunk_common_lexemes from public, anon, authenticated;
grant select on table public.document_chunk_common_lexemes to service_role;

-- Users have no privilege on the table; the service reads it (service_role
-- bypasses row-level security anyway: the policy says who the table is for).
create policy "document_chunk_common_lexemes: the service reads"
  on public.document_chunk_common_lexemes for select
  to service_role
  using (true);

create or replace function public.refresh_document_chunk_common_lexemes()
returns integer
language sql
volatile
security definer
set search_path = ''
as $fn$
  with fresh as (
    select e.lexeme, e.frequency::real as frequency
      from pg_catalog.pg_stats s
     cross join lateral unnest(
             s.most_common_elems::text::text[],
             s.most_common_elem_freqs
           ) as e(lexeme, frequency)
     where s.schemaname = 'public'
       and s.tablename = 'document_chunks'
       and s.attname = 'fts'
       and e.lexeme is not null  -- the frequencies end with three statistics
       and e.frequency >= 0.05
  ),
  removed as (
    delete from public.document_chunk_common_lexemes c
     where not exists (select 1 from fresh f where f.lexeme = c.lexeme)
    returning 1
  ),
  written as (
    insert into public.document_chunk_common_lexemes as c (lexeme, frequency)
    select lexeme, frequency from fresh
        on conflict (lexeme) do update
       set frequency = excluded.frequency
     where c.frequency is distinct from excluded.frequency
    returning 1
  )
  select ((select count(*) from removed) + (select count(*) from written))::int
$fn$;

comment on function public.refresh_document_chunk_common_lexemes() is
  'Copies the lexemes of document_chunks.fts that ANALYZE found in at least 5% of the chunks into document_chunk_common_lexemes, writing only what changed; returns how many rows it wrote or deleted. Run by the ingestion worker after each round of work. Service only.';

revoke all on function public.refresh_document_chunk_common_lexemes() from public, anon, authenticated;
grant execute on function public.refresh_document_chunk_common_lexemes() to service_role;

-- -----------------------------------------------------------------------------
-- The full-text leg of hybrid search (schema private)
-- -----------------------------------------------------------------------------
create or replace function private.text_query_matches_many(
  query_text text,
  text_search_config text default 'english'
)
returns boolean
language plpgsql
stable
set search_path = ''
as $fn$
declare
  config regconfig := text_search_config::regconfig;
  parsed text := websearch_to_tsquery(config, query_text)::text;
begin
  -- An AND query with a word in fewer than 5% of the chunks is selective. The
  -- text's own lexemes are the query's (the same parser and dictionaries);
  -- '|' and '!' are OR and NOT (or inside a word: then it counts as many).
  return strpos(parsed, '|') > 0
      or strpos(parsed, '!') > 0
      or not exists (
           select 1
             from unnest(tsvector_to_array(to_tsvector(config, query_text))) as word
            where not exists (
                    select 1
                      from public.document_chunk_common_lexemes c
                     where c.lexeme = word
                  )
         );
end
$fn$;

comment on function private.text_query_matches_many(text, text) is
  'Whether a websearch_to_tsquery query may match many chunks: every word of it is in document_chunk_common_lexemes, or it has an OR or a NOT. With no statistics yet (a new database) only OR / NOT queries do.';

revoke all on function private.text_query_matches_many(text, text) from public, anon, authenticated;
grant execute on function private.text_query_matches_many(text, text) to service_role;

-- Security definer: under row-level security Postgres may not use a
-- non-leakproof operator such as tsvector @@ tsquery as an index condition
-- below the policies, so a full-text search run as `authenticated` would walk
-- every visible chunk instead of the GIN index. This function runs as the
-- table owner, applies exactly the visibility the policies and hybrid_search
-- give, and returns only chunk ids and ranks; hybrid_search joins them back
-- under the caller's row-level security.
--
-- Bounded: at most max_matches matching chunks are read before ranking, the
-- first ones in table order. One statement, one cached plan, two scans of
-- which one runs: a selective query reads the GIN index; a query whose
-- matches are plentiful (text_query_matches_many) reads the table in order
-- and stops after max_matches matches, because the GIN index would decode
-- the whole posting list of every common word first. Both scans find the same
-- rows. ts_match_vq is the function behind @@: no index serves it, so that
-- scan stays a scan of the table in the cached (generic) plan.
create or replace function private.match_document_chunks_text(
  query_text text,
  text_search_config text default 'english',
  filter_embedding_model text default null,
  filter_chat_room_id bigint default null,
  max_matches int default 200,
  match_count int default 40
)
returns table (
  chunk_id bigint,
  rank     bigint
)
language plpgsql
stable
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $fn$
declare
  tsq tsquery := websearch_to_tsquery(text_search_config::regconfig, query_text);
  plentiful boolean := private.text_query_matches_many(query_text, text_search_config);
  caller uuid := auth.uid();
  room_member boolean := filter_chat_room_id is not null
                         and private.is_room_member(filter_chat_room_id);
begin
  return query
  with candidates as (
    select c.id, c.document_id, c.embedding_model, c.fts
      from public.document_chunks c
     where not plentiful and c.fts @@ tsq
    union all
    select c.id, c.document_id, c.embedding_model, c.fts
      from public.document_chunks c
     where plentiful and ts_match_vq(c.fts, tsq)
  ),
  matches as materialized (
    select m.id, m.fts
      from candidates m
      join public.documents d on d.id = m.document_id
     where (filter_embedding_model is null
            or m.embedding_model = filter_embedding_model)
       and d.status = 'ready'
       and (
         d.visibility = 'shared'
         or (d.visibility = 'private' and d.owner_id = caller)
         or (d.visibility = 'room'
             and d.chat_room_id = filter_chat_room_id
             and (room_member or d.owner_id = caller))
       )
     limit greatest(coalesce(max_matches, 200), 1)
  )
  select m.id, row_number() over (order by ts_rank(m.fts, tsq) desc, m.id)
    from matches m
   order by 2
   limit greatest(coalesce(match_count, 40), 1);
end
$fn$;

comment on function private.match_document_chunks_text(text, text, text, bigint, int, int) is
  'Full-text search (websearch_to_tsquery syntax, in the text_search_config configuration) over ready documents the caller may read: shared ones, the caller''s private ones, and - only when filter_chat_room_id is given - that room''s documents if the caller is its member or the uploader. Reads at most max_matches matching chunks (by the GIN index, or the table in order when matches are plentiful), ranks them with ts_rank and returns the best match_count as (chunk_id, rank), rank 1 = best. The full-text leg of public.hybrid_search.';

revoke all on function private.match_document_chunks_text(text, text, text, bigint, int, int) from public, anon;
grant execute on function private.match_document_chunks_text(text, text, text, bigint, int, int) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- hybrid_search (RPC): the backend's retrieval
-- -----------------------------------------------------------------------------
create or replace function public.hybrid_search(
  query_embedding extensions.vector,
  query_text text,
  filter_embedding_model text,
  filter_chat_room_id bigint default null,
  text_search_config text default 'english',
  match_count int default 5,
  candidate_count int default 40,
  text_scan_limit int default 100,
  vector_weight float8 default 1.0,
  text_weight float8 default 1.0,
  rrf_k int default 60
)
returns table (
  chunk_id     bigint,
  document_id  bigint,
  title        text,
  content      text,
  heading_path text,
  score        float8
)
language plpgsql
stable
security invoker
set search_path = ''
as $fn$
#variable_conflict use_column
begin
  -- A static statement: plpgsql keeps its plan for the connection on every
  -- Postgres version (before 18 a SQL function's statements are planned on
  -- each call), generic under the backend's plan_cache_mode.
  return query
  with vector_candidates as materialized (
    select c.id,
           c.embedding operator(extensions.<=>) query_embedding as distance
      from public.document_chunks c
      join public.documents d on d.id = c.document_id
     where c.embedding_model = filter_embedding_model
       and d.status = 'ready'
       and (
         d.visibility = 'shared'
         or (d.visibility = 'private' and d.owner_id = (select auth.uid()))
         or (d.visibility = 'room' and d.chat_room_id = filter_chat_room_id)
       )
     order by c.embedding operator(extensions.<=>) query_embedding
     limit candidate_count
  ),
  vector_ranked as (
    select id, row_number() over (order by distance, id) as rank
      from vector_candidates
  ),
  text_ranked as (
    select t.chunk_id as id, t.rank
      from private.match_document_chunks_text(
        query_text, text_search_config, filter_embedding_model,
        filter_chat_room_id, text_scan_limit, candidate_count
      ) t
  ),
  fused as (
    select id, sum(score) as score
      from (
        select id, vector_weight / (rrf_k + rank) as score from vector_ranked
        union all
        select id, text_weight / (rrf_k + rank) as score from text_ranked
      ) legs
     group by id
    having sum(score) > 0
     order by score desc, id
     limit match_count
  )
  select c.id, c.document_id, d.title, c.content, c.heading_path, f.score
    from fused f
    join public.document_chunks c on c.id = f.id
    join public.documents d on d.id = c.document_id
   order by f.score desc, c.id;
end
$fn$;

comment on function public.hybrid_search(extensions.vector, text, text, bigint, text, int, int, int, float8, float8, int) is
  'The match_count chunks that best match a question, best first: the candidate_count nearest by embedding (cosine, HNSW) and the best full-text matches (private.match_document_chunks_text in the text_search_config configuration, reading at most text_scan_limit matches), fused with weighted reciprocal rank fusion: score = vector_weight / (rrf_k + vector rank) + text_weight / (rrf_k + text rank). Searches ready documents the caller may read (security invoker: row-level security applies): shared ones, their private ones and filter_chat_room_id''s. RPC: POST /rest/v1/rpc/hybrid_search.';

revoke all on function public.hybrid_search(extensions.vector, text, text, bigint, text, int, int, int, float8, float8, int) from public, anon;
grant execute on function public.hybrid_search(extensions.vector, text, text, bigint, text, int, int, int, float8, float8, int) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- Privileges (chunks: read-only for signed-in users; written by the service).
-- -----------------------------------------------------------------------------
grant select, insert, update, delete on public.documents to authenticated, service_role;
grant select on public.document_chunks to authenticated;
grant select, insert, update, delete on public.document_chunks to service_role;
grant usage, select on sequence public.documents_id_seq to authenticated, service_role;
grant usage, select on sequence public.document_chunks_id_seq to service_role;
