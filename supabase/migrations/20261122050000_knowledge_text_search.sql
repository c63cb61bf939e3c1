-- =============================================================================
-- match_document_chunks_text: the bounded full-text leg of hybrid search.
--
-- Why a SECURITY DEFINER function: under row-level security Postgres may not
-- use a non-leakproof operator such as tsvector @@ tsquery as an index
-- condition below the policies, so a full-text search run as `authenticated`
-- walks every visible chunk instead of the GIN index (measured: 15-170 ms at
-- 100,000 chunks). This function runs as the table owner, applies exactly the
-- visibility the policies and match_document_chunks give (shared documents,
-- the caller's own private documents, and - only for filter_chat_room_id -
-- that room's documents if the caller is its member or the uploader), and
-- returns only chunk ids and ranks; callers join them back under RLS.
--
-- Bounded: at most max_matches matching chunks are read before ranking, so a
-- query of common words (one that matches a third of the corpus) costs about
-- the same as a rare one. Planned for each query text (force_custom_plan): a
-- rare word wants the GIN index, a common one a scan that stops early, and a
-- generic plan cannot tell them apart.
-- Plain SQL only: safe to send as one multi-statement string through a driver.
-- =============================================================================

create or replace function public.match_document_chunks_text(
  query_text text,
  text_search_config regconfig default 'english',
  filter_embedding_model text default null,
  filter_chat_room_id bigint default null,
  max_matches int default 200,
  match_count int default 40
)
returns table (
  chunk_id bigint,
  rank     bigint
)
language sql
stable
security definer
set search_path = ''
set plan_cache_mode = force_custom_plan
as $fn$
  with caller as (
    select (select auth.uid()) as uid
  ),
  matches as materialized (
    select c.id, c.fts
      from public.document_chunks c
      join public.documents d on d.id = c.document_id
     where c.fts @@ websearch_to_tsquery(text_search_config, query_text)
       and (filter_embedding_model is null
            or c.embedding_model = filter_embedding_model)
       and d.status = 'ready'
       and (
         d.visibility = 'shared'
         or (d.visibility = 'private' and d.owner_id = (select uid from caller))
         or (d.visibility = 'room'
             and filter_chat_room_id is not null
             and d.chat_room_id = filter_chat_room_id
             and (d.owner_id = (select uid from caller)
                  or public.is_room_member(filter_chat_room_id)))
       )
     limit greatest(coalesce(max_matches, 200), 1)
  )
  select m.id,
         row_number() over (
           order by ts_rank_cd(m.fts, websearch_to_tsquery(text_search_config, query_text)) desc,
                    m.id
         )
    from matches m
   order by 2
   limit greatest(coalesce(match_count, 40), 1)
$fn$;

comment on function public.match_document_chunks_text(text, regconfig, text, bigint, int, int) is
  'Full-text search (websearch_to_tsquery syntax) over ready documents the caller may read: shared ones, the caller''s private ones, and - only when filter_chat_room_id is given - that room''s documents. Reads at most max_matches matching chunks (GIN index), ranks them with ts_rank_cd and returns the best match_count as (chunk_id, rank), rank 1 = best. The hybrid search fuses this with the vector leg. RPC: POST /rest/v1/rpc/match_document_chunks_text {"query_text": "...", "filter_embedding_model": "..."}.';

revoke all on function public.match_document_chunks_text(text, regconfig, text, bigint, int, int) from public, anon;
grant execute on function public.match_document_chunks_text(text, regconfig, text, bigint, int, int) to authenticated, service_role;
