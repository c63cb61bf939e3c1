-- =============================================================================
-- match_document_chunks_text: planned once for ordinary queries, not per call.
--
-- The full-text leg was planned for every query (force_custom_plan, see
-- 20261122050000): a query of common words wants a scan of the table that
-- stops early, any other the GIN index, and only the query's own plan can tell
-- them apart. That planning was most of the leg's cost: 0.2 ms of the 0.27 ms
-- it took, and 0.5 ms under load. On the load benchmark (bench/load_bench.py,
-- 50 users, 2 cores) the cached plan took Postgres from 2.2 to 1.8 ms of CPU
-- per chat turn, and the turns from 371 to 424 per second. At 113,801 chunks
-- (bench/knowledge_bench.py) hybrid search stayed as fast: p50 3.1-3.4 ms for
-- ordinary queries (3.4 before), 3.7-3.9 ms for common words (3.9-4.0).
--
-- Now the function first looks at the query's lexemes:
-- * if one of them is in fewer than 5% of the chunks (not in
--   document_chunk_common_lexemes), the GIN index finds the matches cheaply
--   whatever the other words: match_document_chunks_text_indexed, planned once
--   per connection (force_generic_plan; that plan reads the GIN index);
-- * otherwise (every word common, or an OR / NOT query, whose matches may be
--   plentiful whatever its words) the query is planned for itself:
--   match_document_chunks_text_planned, the previous body run with EXECUTE.
-- Both are plpgsql so that they behave the same on every Postgres version.
-- Before 18 a SQL function's statements are planned on each call without the
-- arguments' values, so the previous function's force_custom_plan only worked
-- on 18: checked on PostgreSQL 15 (Supabase's older projects), it read the
-- GIN index for a word in half the rows, where EXECUTE scans the table.
-- Both take the first max_matches matches in table order, so they return the
-- same rows; only the cost differs. With no statistics yet (a new database)
-- every query takes the index, which is what a small table wants.
--
-- document_chunk_common_lexemes is a copy of what ANALYZE sampled
-- (pg_stats.most_common_elems of document_chunks.fts, at least 5%): reading
-- pg_stats itself costs 0.15-0.25 ms per query. The ingestion worker refreshes
-- it after each round of work (refresh_document_chunk_common_lexemes, which
-- writes only what changed); admins may call it too.
--
-- Plain SQL only: safe to send as one multi-statement string through a driver.
-- =============================================================================

create table if not exists public.document_chunk_common_lexemes (
  lexeme    text primary key,
  frequency real not null check (frequency > 0 and frequency <= 1)
);

comment on table public.document_chunk_common_lexemes is
  'Lexemes found in at least 5% of document_chunks.fts, with their share of the chunks, as the last ANALYZE sampled them (pg_stats.most_common_elems). Kept by refresh_document_chunk_common_lexemes(); read by match_document_chunks_text to tell a query of common words (planned for itself) from the others (a cached plan on the GIN index). Only affects speed, never results.';

alter table public.document_chunk_common_lexemes enable row level security;
revoke all on table public.document_chunk_common_lexemes from public, anon, authenticated;
grant select on table public.document_chunk_common_lexemes to service_role;


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
  'Copies the lexemes of document_chunks.fts that ANALYZE found in at least 5% of the chunks into document_chunk_common_lexemes, writing only what changed; returns how many rows it wrote or deleted. Run by the ingestion worker after each round of work.';

revoke all on function public.refresh_document_chunk_common_lexemes() from public, anon, authenticated;
grant execute on function public.refresh_document_chunk_common_lexemes() to service_role;


create or replace function public.match_document_chunks_text_planned(
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
language plpgsql
stable
security definer
set search_path = ''
set cpu_index_tuple_cost = 0.05
as $fn$
begin
  -- EXECUTE plans the query for these values on every Postgres version (a
  -- SQL function's statements are planned without them before 18). $1..$6
  -- are the arguments in order; the text is match_document_chunks_text_indexed's.
  return query execute '
  with caller as (
    select (select auth.uid()) as uid
  ),
  matches as materialized (
    select c.id, c.fts
      from public.document_chunks c
      join public.documents d on d.id = c.document_id
     where c.fts @@ websearch_to_tsquery($2, $1)
       and ($3 is null
            or c.embedding_model = $3)
       and d.status = ''ready''
       and (
         d.visibility = ''shared''
         or (d.visibility = ''private'' and d.owner_id = (select uid from caller))
         or (d.visibility = ''room''
             and $4 is not null
             and d.chat_room_id = $4
             and (d.owner_id = (select uid from caller)
                  or public.is_room_member($4)))
       )
     limit greatest(coalesce($5, 200), 1)
  )
  select m.id,
         row_number() over (
           order by ts_rank(m.fts, websearch_to_tsquery($2, $1)) desc,
                    m.id
         )
    from matches m
   order by 2
   limit greatest(coalesce($6, 40), 1)'
    using query_text, text_search_config, filter_embedding_model,
          filter_chat_room_id, max_matches, match_count;
end
$fn$;

comment on function public.match_document_chunks_text_planned(text, regconfig, text, bigint, int, int) is
  'match_document_chunks_text for queries whose matches may be plentiful (every word common, or OR / NOT): planned for each query, so the planner can choose a scan of the table that stops after max_matches matches. Called by match_document_chunks_text only.';


create or replace function public.match_document_chunks_text_indexed(
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
language plpgsql
stable
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $fn$
#variable_conflict use_column
begin
  -- A static statement: plpgsql keeps its plan for the connection.
  return query
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
   limit greatest(coalesce(match_count, 40), 1);
end
$fn$;

comment on function public.match_document_chunks_text_indexed(text, regconfig, text, bigint, int, int) is
  'match_document_chunks_text for queries with a word in fewer than 5% of the chunks: one cached plan per connection, on the GIN index. Called by match_document_chunks_text only.';


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
language plpgsql
stable
security definer
set search_path = ''
as $fn$
declare
  parsed text := websearch_to_tsquery(text_search_config, query_text)::text;
begin
  -- A word in fewer than 5% of the chunks makes an AND query selective. The
  -- text's own lexemes are the query's (the same parser and dictionaries);
  -- '|' and '!' are OR and NOT (or inside a word: then it is planned anyway).
  if strpos(parsed, '|') = 0 and strpos(parsed, '!') = 0
     and exists (
       select 1
         from unnest(tsvector_to_array(to_tsvector(text_search_config, query_text))) as word
        where not exists (
                select 1
                  from public.document_chunk_common_lexemes c
                 where c.lexeme = word
              )
     )
  then
    return query select * from public.match_document_chunks_text_indexed(
      query_text, text_search_config, filter_embedding_model,
      filter_chat_room_id, max_matches, match_count
    );
  else
    return query select * from public.match_document_chunks_text_planned(
      query_text, text_search_config, filter_embedding_model,
      filter_chat_room_id, max_matches, match_count
    );
  end if;
end
$fn$;

comment on function public.match_document_chunks_text(text, regconfig, text, bigint, int, int) is
  'Full-text search (websearch_to_tsquery syntax) over ready documents the caller may read: shared ones, the caller''s private ones, and - only when filter_chat_room_id is given - that room''s documents. Reads at most max_matches matching chunks (GIN index, or the table in order when matches are plentiful), ranks them with ts_rank and returns the best match_count as (chunk_id, rank), rank 1 = best. The hybrid search fuses this with the vector leg. RPC: POST /rest/v1/rpc/match_document_chunks_text {"query_text": "...", "filter_embedding_model": "..."}.';

revoke all on function public.match_document_chunks_text_planned(text, regconfig, text, bigint, int, int) from public, anon, authenticated, service_role;
revoke all on function public.match_document_chunks_text_indexed(text, regconfig, text, bigint, int, int) from public, anon, authenticated, service_role;
revoke all on function public.match_document_chunks_text(text, regconfig, text, bigint, int, int) from public, anon;
grant execute on function public.match_document_chunks_text(text, regconfig, text, bigint, int, int) to authenticated, service_role;

select public.refresh_document_chunk_common_lexemes();
