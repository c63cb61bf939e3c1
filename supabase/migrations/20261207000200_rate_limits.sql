-- =============================================================================
-- Per-user rate limits shared by every API process.
--
-- A token bucket per user and limit (chat messages, document uploads): the API
-- takes a token with one upsert per request, so several replicas on one
-- database enforce one limit together. The schema is private: the Data API
-- does not expose it, and only the backend's own role reads or writes it.
-- =============================================================================

create schema if not exists private;
revoke all on schema private from public;

create table private.rate_limit_buckets (
  user_id      uuid   not null,
  bucket       text   not null,
  tokens       float8 not null,
  updated_at_s float8 not null,
  granted      boolean not null,
  primary key (user_id, bucket)
);

comment on table private.rate_limit_buckets is
  'Token buckets of the per-user rate limits (RATE_LIMIT_*_PER_MINUTE): tokens left at updated_at_s (seconds since the epoch), and whether the last request got one. Written by the backend only.';

revoke all on table private.rate_limit_buckets from public;
