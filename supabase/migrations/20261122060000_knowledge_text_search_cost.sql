-- =============================================================================
-- match_document_chunks_text: cheaper plans for queries of common words, and
-- a cheaper ranking. Same signature, grants and results set as 20261122050000.
--
-- Measured at 105,000 chunks (bench/knowledge_bench.py data, 2 cores):
--
-- * The planner costed a GIN bitmap scan by the rows it returns, but the scan
--   decodes the whole posting list of every word of the query before the LIMIT
--   can stop anything: "use function return" (63%, 39% and 40% of the chunks)
--   took 5 ms in the bitmap index scan, where a sequential scan that stops
--   after max_matches matches reads 1,500 rows in 1.8 ms. The function now
--   charges each index entry 0.05 instead of 0.005 (cpu_index_tuple_cost), so
--   the planner keeps the GIN index for selective queries (all ordinary ones)
--   and reads the table only when matches are plentiful (several percent of
--   the chunks). Either plan takes the first max_matches matches in table
--   order, as before.
-- * ts_rank_cd (cover density) cost 5 us per candidate, 1 ms for 200; ts_rank
--   costs 0.8 us. make eval: hybrid recall@5 and MRR unchanged, full-text MRR
--   0.253 -> 0.257.
--
-- Tried and rejected: finding candidates by the query's rarest lexemes only
-- (frequencies from pg_stats.most_common_elems), then checking the whole
-- query. For ordinary queries GIN already skips through the common words'
-- lists; for queries of common words only, the rarest lexeme's bitmap plus the
-- rechecks took 6.7 ms against 3.9 ms for the whole query, and reading
-- pg_stats cost 0.15-0.25 ms per query.
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
set cpu_index_tuple_cost = 0.05
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
           order by ts_rank(m.fts, websearch_to_tsquery(text_search_config, query_text)) desc,
                    m.id
         )
    from matches m
   order by 2
   limit greatest(coalesce(match_count, 40), 1)
$fn$;

comment on function public.match_document_chunks_text(text, regconfig, text, bigint, int, int) is
  'Full-text search (websearch_to_tsquery syntax) over ready documents the caller may read: shared ones, the caller''s private ones, and - only when filter_chat_room_id is given - that room''s documents. Reads at most max_matches matching chunks (GIN index, or the table in order when matches are plentiful), ranks them with ts_rank and returns the best match_count as (chunk_id, rank), rank 1 = best. The hybrid search fuses this with the vector leg. RPC: POST /rest/v1/rpc/match_document_chunks_text {"query_text": "...", "filter_embedding_model": "..."}.';

revoke all on function public.match_document_chunks_text(text, regconfig, text, bigint, int, int) from public, anon;
grant execute on function public.match_document_chunks_text(text, regconfig, text, bigint, int, int) to authenticated, service_role;
