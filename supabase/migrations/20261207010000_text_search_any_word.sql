-- =============================================================================
-- The full-text leg matches any of a question's words (issue 21).
--
-- websearch_to_tsquery requires every word, so a natural question ("count how
-- many times each item appears in a list") found a chunk only if the chunk
-- held all of its words. A query typed without phrase or negation syntax now
-- matches chunks holding any of its meaningful words (stop words are dropped
-- by the configuration), ranked with ts_rank over the OR of its words, so
-- that chunks holding more of them come first. A query with a "phrase" or a
-- -word keeps websearch_to_tsquery's meaning, as before.
--
-- The candidate bound stays: at most max_matches matching chunks are read.
-- Which ones, for a query of any word:
--   * with a word outside document_chunk_common_lexemes (a rare word): from
--     the GIN index, first the chunks holding every rare word of the query,
--     then those holding any of them; common words only add to the rank;
--   * with common words only: the table in order, stopping after max_matches
--     chunks holding any of them (as for an AND of common words before).
-- =============================================================================

create or replace function private.tsquery_of_lexemes(
  lexemes text[],
  operator text
)
returns tsquery
language sql
immutable
set search_path = ''
as $fn$
  -- Each lexeme quoted as tsquery input wants it (backslash and quote
  -- escaped), so the lexemes are taken as they are, not parsed again.
  select case when cardinality(lexemes) > 0 then
    array_to_string(
      array(
        select '''' || replace(replace(l, '\', '\\'), '''', '''''') || ''''
          from unnest(lexemes) as l
      ),
      ' ' || operator || ' '
    )::tsquery
  end
$fn$;

comment on function private.tsquery_of_lexemes(text[], text) is
  'The tsquery joining lexemes (already normalised, as tsvector_to_array returns them) with operator (& or |); NULL for no lexeme.';

revoke all on function private.tsquery_of_lexemes(text[], text) from public, anon;
grant execute on function private.tsquery_of_lexemes(text[], text) to authenticated, service_role;

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
  -- A query of any word with a word in fewer than 5% of the chunks is
  -- selective: the index finds the chunks holding its rare words. A typed
  -- negation, or a typed OR in a query with a phrase, may match many chunks
  -- whatever the words. The text's own lexemes are the query's (the same
  -- parser and dictionaries).
  return strpos(parsed, '!') > 0
      or (strpos(query_text, '"') > 0 and strpos(parsed, '|') > 0)
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
  'Whether a query of private.match_document_chunks_text may match many chunks, so that the table read in order finds max_matches of them sooner than the GIN index: every word of it is in document_chunk_common_lexemes, or it has a negation (-word), or an OR next to a "phrase". With no statistics yet (a new database) only the last two do.';

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
  config regconfig := text_search_config::regconfig;
  typed tsquery := websearch_to_tsquery(config, query_text);
  -- A phrase or a negation: the user wrote websearch syntax; keep its meaning.
  exact boolean := strpos(query_text, '"') > 0 or strpos(typed::text, '!') > 0;
  words text[] := tsvector_to_array(to_tsvector(config, query_text));
  plentiful boolean := private.text_query_matches_many(query_text, text_search_config);
  rare text[] := array(
    select w from unnest(words) as w
     where not exists (
             select 1 from public.document_chunk_common_lexemes c
              where c.lexeme = w
           )
  );
  -- The two scans: index_all, then index_any, read the GIN index; by_table
  -- reads the table in order. Each is NULL when not used (a one-time filter
  -- of the cached plan), so only one route runs.
  index_all tsquery;
  index_any tsquery;
  by_table tsquery;
  rank_by tsquery;
  caller uuid := auth.uid();
  room_member boolean := filter_chat_room_id is not null
                         and private.is_room_member(filter_chat_room_id);
begin
  if exact then
    rank_by := typed;
  else
    rank_by := private.tsquery_of_lexemes(words, '|');
  end if;
  if plentiful then
    by_table := rank_by;
  elsif exact then
    index_all := typed;
  else
    index_all := private.tsquery_of_lexemes(rare, '&');
    if cardinality(rare) > 1 then
      index_any := private.tsquery_of_lexemes(rare, '|');
    end if;
  end if;

  return query
  with candidates as (
    select c.id, c.document_id, c.embedding_model, c.fts
      from public.document_chunks c
     where index_all is not null and c.fts @@ index_all
    union all
    select c.id, c.document_id, c.embedding_model, c.fts
      from public.document_chunks c
     where index_any is not null and c.fts @@ index_any
       and not ts_match_vq(c.fts, index_all)
    union all
    select c.id, c.document_id, c.embedding_model, c.fts
      from public.document_chunks c
     where by_table is not null and ts_match_vq(c.fts, by_table)
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
  select m.id,
         row_number() over (
           order by ts_rank(m.fts, rank_by) desc, m.id
         )
    from matches m
   order by 2
   limit greatest(coalesce(match_count, 40), 1);
end
$fn$;

comment on function private.match_document_chunks_text(text, text, text, bigint, int, int) is
  'Full-text search in the text_search_config configuration over ready documents the caller may read: shared ones, the caller''s private ones, and - only when filter_chat_room_id is given - that room''s documents if the caller is its member or the uploader. A query with a "phrase" or a -word is read as websearch_to_tsquery reads it; any other matches chunks holding any of its words. Reads at most max_matches matching chunks (by the GIN index, first those holding every rare word of the query; or the table in order when every word is common), ranks them with ts_rank (chunks with more of the words first) and returns the best match_count as (chunk_id, rank), rank 1 = best. The full-text leg of public.hybrid_search.';
