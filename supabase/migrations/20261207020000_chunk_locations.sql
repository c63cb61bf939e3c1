-- =============================================================================
-- Where a chunk lies in its document, for citations: its character span in
-- documents.content and, for a PDF, the pages it covers. public.hybrid_search
-- returns them (its arguments are unchanged; its result gains four columns, so
-- it is dropped and created again).
--
-- Chunks written before this migration have no location (nulls) until their
-- document is indexed again.
-- =============================================================================

alter table public.document_chunks
  add column char_start int null,
  add column char_end   int null,
  add column page_start int null,
  add column page_end   int null,
  add constraint document_chunks_span_check
    check ((char_start is null) = (char_end is null) and char_start <= char_end),
  add constraint document_chunks_pages_check
    check ((page_start is null) = (page_end is null) and page_start <= page_end);

comment on column public.document_chunks.char_start is
  'Offset (0-based, in characters) in documents.content of the chunk''s first character; NULL when unknown.';
comment on column public.document_chunks.char_end is
  'Offset in documents.content just past the chunk''s last character (content[char_start:char_end] holds the chunk''s words); NULL when unknown.';
comment on column public.document_chunks.page_start is
  'First PDF page (from 1) the chunk covers; NULL for documents without pages.';
comment on column public.document_chunks.page_end is
  'Last PDF page the chunk covers (equal to page_start for one page); NULL for documents without pages.';

drop function public.hybrid_search(extensions.vector, text, text, bigint, text, int, int, int, float8, float8, int);

create function public.hybrid_search(
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
  score        float8,
  char_start   int,
  char_end     int,
  page_start   int,
  page_end     int
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
  select c.id, c.document_id, d.title, c.content, c.heading_path, f.score,
         c.char_start, c.char_end, c.page_start, c.page_end
    from fused f
    join public.document_chunks c on c.id = f.id
    join public.documents d on d.id = c.document_id
   order by f.score desc, c.id;
end
$fn$;

comment on function public.hybrid_search(extensions.vector, text, text, bigint, text, int, int, int, float8, float8, int) is
  'The match_count chunks that best match a question, best first, with where each lies in its document (char_start/char_end in documents.content, page_start/page_end for a PDF): the candidate_count nearest by embedding (cosine, HNSW) and the best full-text matches (private.match_document_chunks_text in the text_search_config configuration, reading at most text_scan_limit matches), fused with weighted reciprocal rank fusion: score = vector_weight / (rrf_k + vector rank) + text_weight / (rrf_k + text rank). Searches ready documents the caller may read (security invoker: row-level security applies): shared ones, their private ones and filter_chat_room_id''s. RPC: POST /rest/v1/rpc/hybrid_search.';

revoke all on function public.hybrid_search(extensions.vector, text, text, bigint, text, int, int, int, float8, float8, int) from public, anon;
grant execute on function public.hybrid_search(extensions.vector, text, text, bigint, text, int, int, int, float8, float8, int) to authenticated, service_role;
