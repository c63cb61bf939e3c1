-- =============================================================================
-- A persona can cap the length of its answers.
--
-- max_tokens is passed to the model as the most tokens to generate; NULL keeps
-- the backend's LLM_MAX_TOKENS. Admins set it on their personas from the
-- dashboard, users on their own through the API.
-- =============================================================================

alter table public.virtual_users
  add column max_tokens integer null,
  add constraint virtual_users_max_tokens_range
    check (max_tokens is null or (max_tokens >= 1 and max_tokens <= 32000));

comment on column public.virtual_users.max_tokens is
  'Most tokens an answer may have (1..32000). NULL = the backend''s LLM_MAX_TOKENS.';
