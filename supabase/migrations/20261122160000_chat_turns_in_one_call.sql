-- =============================================================================
-- post_chat_turns: the turns of several users in one call.
--
-- Under load many chat turns wait for a connection at the same time, and one
-- post_chat_turn statement each meant, for each turn, a turn at the backend's
-- connection gate, a round trip, a commit and a wake-up of the database and
-- of the waiting request. The backend now sends the turns that are waiting
-- together, in one statement of this function (backend-py's TurnPoster).
--
-- Each turn is exactly one post_chat_turn call, in the order given: the
-- function takes back the caller's own role before each, and each call takes
-- its turn's user's role and JWT claims, so row-level security decides every
-- turn as that turn's user alone. Rows come back tagged with the turn's
-- position (1-based), in that order; a turn with no rows found no room the
-- user is in. The turns commit together: when the statement fails, none is
-- saved (the backend then posts them again one per statement, so that only a
-- turn at fault fails).
--
-- No SET clause (see 20261122150000): every name is schema-qualified.
-- Plain SQL only: safe to send as one multi-statement string through a driver.
-- =============================================================================

create or replace function public.post_chat_turns(
  claims text[],
  room_ids bigint[],
  messages text[],
  expected_virtual_user_ids bigint[],
  query_embeddings extensions.vector[],
  query_texts text[],
  history_limit int,
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
  turn             int,
  chat_room_id     bigint,
  virtual_user_id  bigint,
  persona_id       bigint,
  persona_name     text,
  system_prompt    text,
  model            text,
  temperature      real,
  max_tokens       integer,
  message_id       bigint,
  role             text,
  content          text,
  status           text,
  sender_name      text,
  chunk_id         bigint,
  document_id      bigint,
  title            text,
  heading_path     text,
  score            float8
)
language plpgsql
volatile
as $fn$
begin
  if cardinality(room_ids) is distinct from cardinality(claims)
     or cardinality(room_ids) is distinct from cardinality(messages)
     or cardinality(room_ids) is distinct from cardinality(expected_virtual_user_ids)
     or cardinality(room_ids) is distinct from cardinality(query_embeddings)
     or cardinality(room_ids) is distinct from cardinality(query_texts) then
    raise exception 'post_chat_turns: the turn arrays differ in length'
      using errcode = '22023';  -- invalid_parameter_value
  end if;

  for i in 1 .. coalesce(cardinality(room_ids), 0) loop
    -- The previous turn left its user's role: the next call needs the
    -- caller's own (only the backend's role may execute post_chat_turn).
    perform pg_catalog.set_config('role', 'none', true);
    return query
      select i, t.*
        from public.post_chat_turn(
          claims[i], room_ids[i], messages[i],
          history_limit, expected_virtual_user_ids[i],
          query_embeddings[i], query_texts[i],
          filter_embedding_model, text_search_config, match_count,
          candidate_count, text_scan_limit, vector_weight, text_weight, rrf_k
        ) t;
  end loop;
end
$fn$;

comment on function public.post_chat_turns(text[], bigint[], text[], bigint[], extensions.vector[], text[], int, text, regconfig, int, int, int, float8, float8, int) is
  'Several chat turns in one call: for each position of the arrays, in order, one public.post_chat_turn call with that position''s JWT claims, room, message, expected persona, query embedding and query text (and the shared history limit and search settings), each as its own user. Rows are post_chat_turn''s, tagged with the turn''s position (1-based); a turn with no rows found no room its user is in. The turns commit together. Callable only by the backend''s role.';

revoke all on function public.post_chat_turns(text[], bigint[], text[], bigint[], extensions.vector[], text[], int, text, regconfig, int, int, int, float8, float8, int) from public, anon, authenticated, service_role;
