-- =============================================================================
-- post_chat_turn runs with its caller's search path.
--
-- Postgres re-plans a cached plan when the search path differs from the one
-- it was planned with, and the foreign-key checks of inserts into
-- public.messages share one cached plan per connection, whoever inserts. The
-- user message is inserted inside post_chat_turn, whose SET clause made the
-- search path empty; the AI message is inserted by the backend's own
-- statement, with the connection's search path. So every chat turn planned
-- the chat_rooms key check twice, once for each path (0.06 ms of planning per
-- turn on the load benchmark, and the check ran at 0.03 instead of 0.01 ms).
--
-- Without the SET clause nothing else changes: every name in the function is
-- schema-qualified, pg_catalog is searched first whatever the path, the
-- function is security invoker, and only the backend's role may execute it
-- (20261122110000).
-- =============================================================================

alter function public.post_chat_turn(text, bigint, text, int, bigint, extensions.vector, text, text, regconfig, int, int, int, float8, float8, int)
  reset search_path;
