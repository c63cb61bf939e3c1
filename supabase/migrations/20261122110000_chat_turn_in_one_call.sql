-- =============================================================================
-- A chat turn's database work in one call, as the user.
--
-- * hybrid_search: the backend's hybrid retrieval (pgvector HNSW + full text,
--   fused with weighted reciprocal rank fusion), moved here from the backend's
--   code unchanged so that the search API and the chat turn share it. Security
--   invoker: row-level security applies to the caller. Also callable as RPC.
-- * post_chat_turn: saves a user's message in a room they are in, reads the
--   history before it and retrieves knowledge for it, after taking the
--   authenticated role with the given JWT claims, as PostgREST does. The
--   backend used four round trips for this (begin as the user, save, search,
--   commit); under load each cost about 4 ms of waiting while holding a pooled
--   connection. Only the backend's own role may call it: a caller choosing the
--   claims chooses who it is.
--
-- Plain SQL only: safe to send as one multi-statement string through a driver.
-- =============================================================================

create or replace function public.hybrid_search(
  query_embedding extensions.vector,
  query_text text,
  filter_embedding_model text,
  filter_chat_room_id bigint default null,
  text_search_config regconfig default 'english',
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
language sql
stable
-- No "set search_path" (every name is qualified): a function with SET clauses
-- is never inlined, and inlined, the planner plans the search with the
-- caller's statement, as when it was the backend's own SQL.
as $fn$
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
      from public.match_document_chunks_text(
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
   order by f.score desc, c.id
$fn$;

comment on function public.hybrid_search(extensions.vector, text, text, bigint, regconfig, int, int, int, float8, float8, int) is
  'The match_count chunks that best match a question, best first: the candidate_count nearest by embedding (cosine, HNSW) and the best full-text matches (match_document_chunks_text, reading at most text_scan_limit matches), fused with weighted reciprocal rank fusion: score = vector_weight / (rrf_k + vector rank) + text_weight / (rrf_k + text rank). Searches ready documents the caller may read: shared ones, their private ones and filter_chat_room_id''s. RPC: POST /rest/v1/rpc/hybrid_search.';

revoke all on function public.hybrid_search(extensions.vector, text, text, bigint, regconfig, int, int, int, float8, float8, int) from public, anon;
grant execute on function public.hybrid_search(extensions.vector, text, text, bigint, regconfig, int, int, int, float8, float8, int) to authenticated, service_role;


create or replace function public.post_chat_turn(
  claims text,
  room_id bigint,
  message text,
  history_limit int,
  expected_virtual_user_id bigint,
  query_embedding extensions.vector,
  query_text text,
  filter_embedding_model text,
  text_search_config regconfig,
  match_count int,
  candidate_count int,
  text_scan_limit int,
  vector_weight float8,
  text_weight float8,
  rrf_k int
)
returns table (
  -- the room and the persona answering in it (the room's, else its creator's
  -- preferred one, else the admins' default), on every row of the first part
  chat_room_id     bigint,
  virtual_user_id  bigint,
  persona_id       bigint,
  persona_name     text,
  system_prompt    text,
  model            text,
  temperature      real,
  max_tokens       integer,
  -- the saved message; NULL when the room has another persona than expected
  message_id       bigint,
  -- the history before it, newest first (NULLs for an empty room)
  role             text,
  content          text,  -- also the chunk's text in the rows below
  status           text,
  sender_name      text,
  -- then the retrieved chunks, best first (only these and content are set)
  chunk_id         bigint,
  document_id      bigint,
  title            text,
  heading_path     text,
  score            float8
)
language plpgsql
volatile
set search_path = ''
as $fn$
#variable_conflict use_column
declare
  caller uuid;
  room_found bigint;
  room_virtual_user_id bigint;
  room_created_by uuid;
  posted_id bigint;
begin
  -- For the rest of this transaction (the statement, when called outside
  -- one), as PostgREST's requests: row-level security decides from here on.
  perform set_config('request.jwt.claims', claims, true);
  perform set_config('role', 'authenticated', true);
  caller := auth.uid();

  select r.id, r.virtual_user_id, r.created_by
    into room_found, room_virtual_user_id, room_created_by
    from public.chat_rooms r
    join public.user_chats uc on uc.chat_room_id = r.id and uc.user_id = caller
   where r.id = post_chat_turn.room_id;
  if room_found is null then
    return;  -- no such room, or the caller is not in it
  end if;

  if expected_virtual_user_id is null
     or room_virtual_user_id = expected_virtual_user_id then
    insert into public.messages (chat_room_id, role, content, sender_user_id)
    values (room_found, 'user', message, caller)
    returning id into posted_id;
  end if;

  return query
    select room_found, room_virtual_user_id, p.id, p.name, p.system_prompt,
           p.model, p.temperature, p.max_tokens, posted_id,
           recent.role, recent.content, recent.status, recent.sender_name,
           null::bigint, null::bigint, null::text, null::text, null::float8
      from (select) as one_row
      left join lateral (
        select v.id, v.name, v.system_prompt, v.model, v.temperature,
               v.max_tokens
          from public.virtual_users v
         where case
                 when room_virtual_user_id is not null
                   then v.id = room_virtual_user_id
                 else v.id = (select up.default_virtual_user_id
                                from public.user_profiles up
                               where up.user_id = room_created_by)
                      or (v.is_default and v.owner_id is null)
               end
         order by v.is_default and v.owner_id is null
         limit 1
      ) p on true
      left join lateral (
        select m.role, m.content, m.status,
               coalesce(u.display_name, u.account_name, v.name) as sender_name
          from public.messages m
          left join public.general_users u on u.id = m.sender_user_id
          left join public.virtual_users v on v.id = m.sender_virtual_user_id
         where m.chat_room_id = room_found and m.id < posted_id
         order by m.id desc
         limit history_limit
      ) recent on true;

  if posted_id is null or query_embedding is null then
    return;  -- another persona than expected (nothing saved), or no retrieval
  end if;

  return query
    select null::bigint, null::bigint, null::bigint, null::text, null::text,
           null::text, null::real, null::integer, null::bigint, null::text,
           h.content, null::text, null::text,
           h.chunk_id, h.document_id, h.title, h.heading_path, h.score
      from public.hybrid_search(
        query_embedding, query_text, filter_embedding_model, room_found,
        text_search_config, match_count, candidate_count, text_scan_limit,
        vector_weight, text_weight, rrf_k
      ) h;
end
$fn$;

comment on function public.post_chat_turn(text, bigint, text, int, bigint, extensions.vector, text, text, regconfig, int, int, int, float8, float8, int) is
  'The backend''s chat turn in one call: as the user of the given JWT claims (role authenticated, row-level security applies), saves their message in a room they are in, returns the room with its answering persona and the history before the message, then the hybrid_search results (none when query_embedding is NULL). Nothing is saved when the room does not exist for the user or has another persona than expected_virtual_user_id. Callable only by the backend''s role.';

revoke all on function public.post_chat_turn(text, bigint, text, int, bigint, extensions.vector, text, text, regconfig, int, int, int, float8, float8, int) from public, anon, authenticated, service_role;
