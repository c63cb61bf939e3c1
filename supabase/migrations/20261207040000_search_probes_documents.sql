-- =============================================================================
-- hybrid_search reads a candidate's document by its primary key (issue 21).
--
-- Both legs scanned every row of documents once per search: the vector leg
-- through the row-level-security policy of document_chunks (a hashed subplan
-- over all documents, planned for the 52,000 rows the HNSW scan might
-- return rather than the 20 it does), the full-text leg by hash-joining its
-- 100 candidates with documents. That cost grew with the number of
-- documents, not with what a search returns.
--
-- The vector leg is now private.match_document_chunks_vector, security
-- definer like the full-text leg, with the same visibility rule written out;
-- both legs probe documents by primary key per candidate and return the
-- candidate's document, so the fusion no longer reads chunks to group them.
-- hybrid_search stays security invoker: the chunks it returns are read under
-- row-level security, as before. Its signature and results are unchanged.
-- =============================================================================

drop function private.match_document_chunks_text(text, text, text, bigint, int, int);

create function private.match_document_chunks_vector(
  query_embedding extensions.vector,
  filter_embedding_model text,
  filter_chat_room_id bigint default null,
  match_count int default 40
)
returns table (
  chunk_id    bigint,
  document_id bigint,
  rank        bigint
)
language plpgsql
stable
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $fn$
declare
  caller uuid := auth.uid();
  room_member boolean := filter_chat_room_id is not null
                         and private.is_room_member(filter_chat_room_id);
begin
  return query
  with nearest as materialized (
    select c.id, c.document_id,
           c.embedding operator(extensions.<=>) query_embedding as distance
      from public.document_chunks c
     -- Each chunk's document by its primary key, as the index yields it.
     cross join lateral (
           select d.status, d.visibility, d.owner_id, d.chat_room_id
             from public.documents d
            where d.id = c.document_id
           offset 0
         ) d
     where c.embedding_model = filter_embedding_model
       and d.status = 'ready'
       and (
         d.visibility = 'shared'
         or (d.visibility = 'private' and d.owner_id = caller)
         or (d.visibility = 'room'
             and d.chat_room_id = filter_chat_room_id
             and (room_member or d.owner_id = caller))
       )
     order by c.embedding operator(extensions.<=>) query_embedding
     limit greatest(coalesce(match_count, 40), 1)
  )
  select n.id, n.document_id, row_number() over (order by n.distance, n.id)
    from nearest n
   order by 3;
end
$fn$;

comment on function private.match_document_chunks_vector(extensions.vector, text, bigint, int) is
  'The match_count chunks of filter_embedding_model nearest to query_embedding (cosine, HNSW, iterative scan) among ready documents the caller may read: shared ones, the caller''s private ones, and - only when filter_chat_room_id is given - that room''s documents if the caller is its member or the uploader; as (chunk_id, document_id, rank), rank 1 = nearest. The vector leg of public.hybrid_search.';

revoke all on function private.match_document_chunks_vector(extensions.vector, text, bigint, int) from public, anon;
grant execute on function private.match_document_chunks_vector(extensions.vector, text, bigint, int) to authenticated, service_role;

create function private.match_document_chunks_text(
  query_text text,
  text_search_config text default 'english',
  filter_embedding_model text default null,
  filter_chat_room_id bigint default null,
  max_matches int default 200,
  match_count int default 40
)
returns table (
  chunk_id    bigint,
  document_id bigint,
  rank        bigint
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
              where c.lexeme = w and c.frequency >= 0.05
           )
  );
  -- BM25's inverse document frequency of each word (in the order of words).
  idf float8[] := private.lexeme_idf(words);
  average_lexemes float8 := (
    select s.average_lexemes from public.document_chunk_text_statistics s
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
    select m.id, m.document_id, m.fts
      from candidates m
     -- Each candidate's document by its primary key (OFFSET 0 keeps the
     -- probe): a join would hash every row of documents for 100 candidates.
     cross join lateral (
           select d.status, d.visibility, d.owner_id, d.chat_room_id
             from public.documents d
            where d.id = m.document_id
           offset 0
         ) d
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
         m.document_id,
         row_number() over (
           order by
             case
               when exact then ts_rank(m.fts, rank_by)
               else (
                 -- Okapi BM25 (k1 = 1.2, b = 0.75): each word of the query
                 -- the chunk holds, weighted by its rarity, saturating in how
                 -- often the chunk says it, relative to the chunk's length.
                 select coalesce(sum(
                          idf[array_position(words, t.lexeme)]
                          * f.tf * 2.2
                          / (f.tf + 1.2 * (0.25 + 0.75 * length(m.fts)
                                           / coalesce(average_lexemes,
                                                      length(m.fts))))
                        ), 0)
                   -- Only the query's words of the chunk (fts holds weight D
                   -- only: the trigger writes it; mark the words A, keep A):
                   -- unnesting every lexeme of 100 chunks costs 4x more.
                   from unnest(
                          ts_filter(setweight(m.fts, 'A', words), '{a}')
                        ) as t(lexeme, positions, weights)
                  cross join lateral (
                        select coalesce(cardinality(t.positions), 1)::float8 as tf
                       ) f
               )
             end desc,
             m.id
         )
    from matches m
   order by 3
   limit greatest(coalesce(match_count, 40), 1);
end
$fn$;

comment on function private.match_document_chunks_text(text, text, text, bigint, int, int) is
  'Full-text search in the text_search_config configuration over ready documents the caller may read: shared ones, the caller''s private ones, and - only when filter_chat_room_id is given - that room''s documents if the caller is its member or the uploader. A query with a "phrase" or a -word is read as websearch_to_tsquery reads it and ranked with ts_rank; any other matches chunks holding any of its words and is ranked with BM25 (idf from document_chunk_common_lexemes and document_chunk_text_statistics). Reads at most max_matches matching chunks (by the GIN index, first those holding every rare word of the query; or the table in order when every word is common) and returns the best match_count as (chunk_id, document_id, rank), rank 1 = best. The full-text leg of public.hybrid_search.';

revoke all on function private.match_document_chunks_text(text, text, text, bigint, int, int) from public, anon;
grant execute on function private.match_document_chunks_text(text, text, text, bigint, int, int) to authenticated, service_role;

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
  rrf_k int default 60,
  text_candidate_count int default null,
  page_weight float8 default 0,
  page_count int default 5
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
  with vector_ranked as (
    select v.chunk_id as id, v.document_id, v.rank
      from private.match_document_chunks_vector(
        query_embedding, filter_embedding_model, filter_chat_room_id,
        candidate_count
      ) v
  ),
  text_ranked as (
    select t.chunk_id as id, t.document_id, t.rank
      from private.match_document_chunks_text(
        query_text, text_search_config, filter_embedding_model,
        filter_chat_room_id, text_scan_limit,
        coalesce(text_candidate_count, candidate_count)
      ) t
  ),
  -- The pages: the page_count documents whose centroid is nearest. Each
  -- adds its rank to the best-scored of its chunks among the two legs'
  -- candidates (none, if it has no chunk there): no chunk is read for it.
  page_candidates as materialized (
    select d.id,
           d.centroid operator(extensions.<=>) query_embedding as distance
      from public.documents d
     where d.embedding_model = filter_embedding_model
       and d.centroid is not null
       and d.status = 'ready'
       and (
         d.visibility = 'shared'
         or (d.visibility = 'private' and d.owner_id = (select auth.uid()))
         or (d.visibility = 'room' and d.chat_room_id = filter_chat_room_id)
       )
     order by d.centroid operator(extensions.<=>) query_embedding
     limit case when page_weight > 0 then greatest(page_count, 0) else 0 end
  ),
  page_ranked as (
    select id as document_id,
           row_number() over (order by distance, id) as rank
      from page_candidates
  ),
  legs as (
    select id, document_id, sum(score) as score
      from (
        select id, document_id, vector_weight / (rrf_k + rank) as score
          from vector_ranked
        union all
        select id, document_id, text_weight / (rrf_k + rank) as score
          from text_ranked
      ) l
     group by id, document_id
    having sum(score) > 0
  ),
  placed as (
    select l.id, l.score, l.document_id,
           row_number() over (
             partition by l.document_id order by l.score desc, l.id
           ) as nth
      from legs l
  ),
  fused as (
    select p.id,
           p.score + coalesce(page_weight / (rrf_k + r.rank), 0) as score
      from placed p
      left join page_ranked r on r.document_id = p.document_id and p.nth = 1
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

comment on function public.hybrid_search(extensions.vector, text, text, bigint, text, int, int, int, float8, float8, int, int, float8, int) is
  'The match_count chunks that best match a question, best first, with where each lies in its document (char_start/char_end in documents.content, page_start/page_end for a PDF): the candidate_count nearest by embedding (private.match_document_chunks_vector: cosine, HNSW) and the text_candidate_count (NULL: candidate_count) best full-text matches (private.match_document_chunks_text in the text_search_config configuration, reading at most text_scan_limit matches) fused with weighted reciprocal rank fusion: score = vector_weight / (rrf_k + vector rank) + text_weight / (rrf_k + text rank); with page_weight > 0, the best-scored candidate chunk of each of the page_count documents whose centroid (documents.centroid) is nearest adds page_weight / (rrf_k + page rank). Searches ready documents the caller may read (security invoker: row-level security applies): shared ones, their private ones and filter_chat_room_id''s. RPC: POST /rest/v1/rpc/hybrid_search.';

