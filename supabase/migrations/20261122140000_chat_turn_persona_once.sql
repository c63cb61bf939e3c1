-- =============================================================================
-- post_chat_turn: the room and its persona once per turn, not on every row.
--
-- The first version (20261122110000) repeated the room's columns, the
-- persona's system prompt among them, on each of the up to history_limit
-- (30) history rows: with a long system prompt, 30 copies per chat turn for
-- the database to send and the backend to decode. Now the first row carries
-- the room, the persona and the saved message's id, and the history rows
-- carry only the message columns (the room's are NULL there). Same signature,
-- same result columns, same grants; the backend reads the room from the first
-- row and the history from the rows with a role, as before.
--
-- The persona is also found with an index now: the query that chose between
-- the room's persona and the defaults with a CASE in its WHERE clause had,
-- as a generic plan (the backend's sessions use generic plans), a sequential
-- scan of virtual_users with the row-level-security check on every persona.
--
-- Plain SQL only: safe to send as one multi-statement string through a driver.
-- =============================================================================

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
  -- preferred one, else the admins' default), on the first row only
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
  -- then the history before it, newest first, one message per row
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
  persona record;
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

  -- The room's persona, else its creator's preferred one, else the admins'
  -- default: two statements, so that each is planned on an index (one query
  -- choosing between them with CASE had a generic plan reading every
  -- persona).
  if room_virtual_user_id is not null then
    select v.id, v.name, v.system_prompt, v.model, v.temperature, v.max_tokens
      into persona
      from public.virtual_users v
     where v.id = room_virtual_user_id;
  else
    select v.id, v.name, v.system_prompt, v.model, v.temperature, v.max_tokens
      into persona
      from public.virtual_users v
     where v.id = (select up.default_virtual_user_id
                     from public.user_profiles up
                    where up.user_id = room_created_by)
        or (v.is_default and v.owner_id is null)
     order by v.is_default and v.owner_id is null
     limit 1;
  end if;

  -- The room with its persona once, on a row of its own; then the history.
  return query
    select room_found, room_virtual_user_id, persona.id, persona.name,
           persona.system_prompt, persona.model, persona.temperature,
           persona.max_tokens, posted_id,
           null::text, null::text, null::text, null::text,
           null::bigint, null::bigint, null::text, null::text, null::float8;

  if posted_id is not null then
    return query
      select null::bigint, null::bigint, null::bigint, null::text, null::text,
             null::text, null::real, null::integer, null::bigint,
             m.role, m.content, m.status,
             coalesce(u.display_name, u.account_name, v.name),
             null::bigint, null::bigint, null::text, null::text, null::float8
        from public.messages m
        left join public.general_users u on u.id = m.sender_user_id
        left join public.virtual_users v on v.id = m.sender_virtual_user_id
       where m.chat_room_id = room_found and m.id < posted_id
       order by m.id desc
       limit history_limit;
  end if;

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
  'The backend''s chat turn in one call: as the user of the given JWT claims (role authenticated, row-level security applies), saves their message in a room they are in, returns the room with its answering persona (first row), the history before the message (newest first), then the hybrid_search results (none when query_embedding is NULL). Nothing is saved when the room does not exist for the user or has another persona than expected_virtual_user_id. Callable only by the backend''s role.';
