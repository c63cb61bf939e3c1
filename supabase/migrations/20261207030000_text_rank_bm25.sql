-- =============================================================================
-- The full-text leg ranks by BM25, and each leg has its own candidate count
-- (issue 21).
--
-- ts_rank counts every word of the question alike: "use" in half the chunks
-- weighs as much as "nowait" in three. A question of any words is now ranked
-- with Okapi BM25 (k1 = 1.2, b = 0.75): each word the chunk holds counts by
-- its inverse document frequency, saturating in how often the chunk says it,
-- relative to the chunk's length. A query with "phrase" or -word syntax keeps
-- ts_rank. Which chunks are read (the candidate bound) is unchanged.
--
-- The word statistics are those ANALYZE already samples, copied by
-- refresh_document_chunk_common_lexemes() after each round of the worker, so
-- a query reads two small tables and does no work that grows with the corpus:
--   * document_chunk_common_lexemes now holds every lexeme ANALYZE lists
--     (pg_stats.most_common_elems: about 1,000 at the default statistics
--     target), with its share of the chunks; "common" (the scan choice) is
--     still a share of at least 5%;
--   * document_chunk_text_statistics (one row): the average number of
--     distinct lexemes of a chunk (ANALYZE keeps none for a tsvector: from
--     a sample of about 5,000 chunks) and the smallest listed share, which
--     stands for every unlisted word.
-- Without statistics (a new database) every word weighs the same and chunk
-- length is not normalised.
--
-- hybrid_search gains text_candidate_count (NULL: candidate_count): how many
-- full-text candidates enter the fusion, apart from the vector leg's
-- candidate_count.
--
-- And a third leg, pages: documents.centroid is the mean of a document's
-- chunk embeddings (kept when its chunks are written or re-embedded); the
-- page_count documents whose centroid is nearest the question are ranked by
-- that distance, and each adds page_weight / (rrf_k + its rank) to the best
-- of its chunks among the two legs' candidates (0, the default: no page
-- leg). A page about the question's subject comes up even when none of its
-- chunks alone ranks high.
-- =============================================================================

create table public.document_chunk_text_statistics (
  only_row        boolean primary key default true check (only_row),
  average_lexemes real not null check (average_lexemes > 0),
  rare_frequency  real not null check (rare_frequency > 0 and rare_frequency <= 1)
);

comment on table public.document_chunk_text_statistics is
  'One row: statistics of document_chunks.fts as the last ANALYZE sampled them (pg_stats), for the BM25 rank of private.match_document_chunks_text. average_lexemes: distinct lexemes of a chunk on average; rare_frequency: the smallest share of chunks among the lexemes of document_chunk_common_lexemes, taken for any lexeme not listed there. Kept by refresh_document_chunk_common_lexemes(); no row before the first ANALYZE.';

alter table public.document_chunk_text_statistics enable row level security;
revoke all on table public.document_chunk_text_statistics from public, anon, authenticated;
grant select on table public.document_chunk_text_statistics to service_role;

-- Users have no privilege on the table; the service reads it (service_role
-- bypasses row-level security anyway: the policy says who the table is for).
create policy "document_chunk_text_statistics: the service reads"
  on public.document_chunk_text_statistics for select
  to service_role
  using (true);

comment on table public.document_chunk_common_lexemes is
  'Lexemes of document_chunks.fts that the last ANALYZE listed (pg_stats.most_common_elems), with their share of the chunks. Kept by refresh_document_chunk_common_lexemes(); read by private.match_document_chunks_text to choose between its two scans (a lexeme with a share of at least 5% is common: the table in order for a query of common words, the GIN index for a selective one) and for the inverse document frequency of its BM25 rank.';

create or replace function private.chunk_average_lexemes()
returns real
language plpgsql
stable
set search_path = ''
as $fn$
declare
  estimate float8 := (
    select c.reltuples from pg_catalog.pg_class c
     where c.oid = 'public.document_chunks'::regclass
  );
begin
  -- Every chunk of a small table; of a large one, the pages of a sample of
  -- about 5,000 chunks (TABLESAMPLE SYSTEM reads only those pages).
  if estimate < 10000 then
    return (select avg(length(c.fts)) from public.document_chunks c);
  end if;
  return (
    select avg(length(c.fts))
      from public.document_chunks c tablesample system (100 * 5000 / estimate)
  );
end
$fn$;

comment on function private.chunk_average_lexemes() is
  'The average number of distinct lexemes of document_chunks.fts (length(fts)): over every chunk of a table under 10,000 rows (pg_class.reltuples), else over a TABLESAMPLE SYSTEM sample of about 5,000 chunks; NULL for no chunk.';

revoke all on function private.chunk_average_lexemes() from public, anon, authenticated;
grant execute on function private.chunk_average_lexemes() to service_role;

create or replace function public.refresh_document_chunk_common_lexemes()
returns integer
language sql
volatile
security definer
set search_path = ''
as $fn$
  with stats as (
    select s.most_common_elems::text::text[] as lexemes,
           s.most_common_elem_freqs as frequencies
      from pg_catalog.pg_stats s
     where s.schemaname = 'public'
       and s.tablename = 'document_chunks'
       and s.attname = 'fts'
       and not s.inherited
  ),
  fresh as (
    select e.lexeme, e.frequency::real as frequency
      from stats s
     cross join lateral unnest(s.lexemes, s.frequencies) as e(lexeme, frequency)
     where e.lexeme is not null  -- the frequencies end with three statistics
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
  ),
  -- The smallest listed share follows the lexemes' own shares.
  summary as (
    select private.chunk_average_lexemes() as average_lexemes,
           s.frequencies[cardinality(s.lexemes) + 1]::real as rare_frequency
      from stats s
     where cardinality(s.lexemes) > 0
  ),
  summarised as (
    insert into public.document_chunk_text_statistics as t
           (only_row, average_lexemes, rare_frequency)
    select true, average_lexemes, rare_frequency from summary
     where average_lexemes > 0
        on conflict (only_row) do update
       set average_lexemes = excluded.average_lexemes,
           rare_frequency = excluded.rare_frequency
     where (t.average_lexemes, t.rare_frequency)
           is distinct from (excluded.average_lexemes, excluded.rare_frequency)
    returning 1
  )
  select ((select count(*) from removed) + (select count(*) from written))::int
$fn$;

comment on function public.refresh_document_chunk_common_lexemes() is
  'Copies the lexemes of document_chunks.fts that ANALYZE listed, with their share of the chunks, into document_chunk_common_lexemes, and the average distinct lexemes of a chunk (private.chunk_average_lexemes) and the smallest listed share into document_chunk_text_statistics, writing only what changed; returns how many lexeme rows it wrote or deleted. Run by the ingestion worker after each round of work. Service only.';

create or replace function private.lexeme_idf(lexemes text[])
returns float8[]
language sql
stable
set search_path = ''
as $fn$
  -- BM25's idf, ln(1 + (1 - p) / p) for a share p of the chunks: a listed
  -- lexeme's own share, any other the smallest listed one; 1 for every
  -- lexeme while there are no statistics.
  select array(
           select coalesce(
                    ln(1 + (1 - p.share) / p.share),
                    1.0
                  )
             from unnest(lexemes) with ordinality as l(lexeme, n)
             cross join lateral (
                   select coalesce(
                            (select c.frequency from public.document_chunk_common_lexemes c
                              where c.lexeme = l.lexeme),
                            (select s.rare_frequency
                               from public.document_chunk_text_statistics s)
                          )::float8 as share
                  ) p
            order by l.n
         )
$fn$;

comment on function private.lexeme_idf(text[]) is
  'The BM25 inverse document frequency of each lexeme, in order: ln(1 + (1 - p) / p) for its share p of the chunks (document_chunk_common_lexemes, or document_chunk_text_statistics.rare_frequency for a lexeme not listed there); 1 without statistics.';

revoke all on function private.lexeme_idf(text[]) from public, anon, authenticated;
grant execute on function private.lexeme_idf(text[]) to service_role;

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
  -- As before (20261207010000): a query of any word with a word in fewer
  -- than 5% of the chunks is selective; the table now lists rarer words too.
  return strpos(parsed, '!') > 0
      or (strpos(query_text, '"') > 0 and strpos(parsed, '|') > 0)
      or not exists (
           select 1
             from unnest(tsvector_to_array(to_tsvector(config, query_text))) as word
            where not exists (
                    select 1
                      from public.document_chunk_common_lexemes c
                     where c.lexeme = word and c.frequency >= 0.05
                  )
         );
end
$fn$;

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
   order by 2
   limit greatest(coalesce(match_count, 40), 1);
end
$fn$;

comment on function private.match_document_chunks_text(text, text, text, bigint, int, int) is
  'Full-text search in the text_search_config configuration over ready documents the caller may read: shared ones, the caller''s private ones, and - only when filter_chat_room_id is given - that room''s documents if the caller is its member or the uploader. A query with a "phrase" or a -word is read as websearch_to_tsquery reads it and ranked with ts_rank; any other matches chunks holding any of its words and is ranked with BM25 (idf from document_chunk_common_lexemes and document_chunk_text_statistics). Reads at most max_matches matching chunks (by the GIN index, first those holding every rare word of the query; or the table in order when every word is common) and returns the best match_count as (chunk_id, rank), rank 1 = best. The full-text leg of public.hybrid_search.';

alter table public.documents add column centroid extensions.vector(384) null;

comment on column public.documents.centroid is
  'The mean of the embeddings of the document''s chunks (of its embedding_model), for the page leg of public.hybrid_search; written with the chunks (and by make reembed); NULL without chunks.';

update public.documents d
   set centroid = (
         select avg(c.embedding) from public.document_chunks c
          where c.document_id = d.id and c.embedding_model = d.embedding_model
       )
 where d.chunk_count > 0;

create index documents_centroid_hnsw_idx on public.documents
  using hnsw (centroid extensions.vector_cosine_ops);

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
    select id, sum(score) as score
      from (
        select id, vector_weight / (rrf_k + rank) as score from vector_ranked
        union all
        select id, text_weight / (rrf_k + rank) as score from text_ranked
      ) l
     group by id
    having sum(score) > 0
  ),
  placed as (
    select l.id, l.score, c.document_id,
           row_number() over (
             partition by c.document_id order by l.score desc, l.id
           ) as nth
      from legs l
      join public.document_chunks c on c.id = l.id
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
  'The match_count chunks that best match a question, best first, with where each lies in its document (char_start/char_end in documents.content, page_start/page_end for a PDF): the candidate_count nearest by embedding (cosine, HNSW) and the text_candidate_count (NULL: candidate_count) best full-text matches (private.match_document_chunks_text in the text_search_config configuration, reading at most text_scan_limit matches) fused with weighted reciprocal rank fusion: score = vector_weight / (rrf_k + vector rank) + text_weight / (rrf_k + text rank); with page_weight > 0, the best-scored candidate chunk of each of the page_count documents whose centroid (documents.centroid) is nearest adds page_weight / (rrf_k + page rank). Searches ready documents the caller may read (security invoker: row-level security applies): shared ones, their private ones and filter_chat_room_id''s. RPC: POST /rest/v1/rpc/hybrid_search.';

revoke all on function public.hybrid_search(extensions.vector, text, text, bigint, text, int, int, int, float8, float8, int, int, float8, int) from public, anon;
grant execute on function public.hybrid_search(extensions.vector, text, text, bigint, text, int, int, int, float8, float8, int, int, float8, int) to authenticated, service_role;

-- The statistics of an existing database now, not at the worker's next round
-- (until then a word outside the 5% would weigh less than a common one).
select public.refresh_document_chunk_common_lexemes();
