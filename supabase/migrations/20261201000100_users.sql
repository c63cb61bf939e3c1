-- =============================================================================
-- Users: general_users (one per auth user), virtual_users (AI personas),
-- user_profiles, the signup trigger on auth.users, and the schema "private"
-- that holds the helpers of row-level security.
--
-- Baseline (2026-12-01): this file, 20261201000200_chat.sql and
-- 20261201000300_knowledge.sql hold the whole schema. Migrations are
-- append-only from here on: a change is a new file, never an edit of these.
--
-- Applies unchanged on a real Supabase project and on the embedded
-- development database (after backend-py/app/src/infra/sql/supabase_compat.sql).
-- Plain SQL only: no psql meta-commands, safe to send as one multi-statement
-- string through a driver.
-- =============================================================================

-- -----------------------------------------------------------------------------
-- Schema private: functions that policies and the API's functions call but
-- that are not part of the API. The Data API exposes "public" only
-- (supabase/config.toml), so nothing here is reachable as an RPC. Every
-- function here sets its search_path and is executable only by the roles
-- named in its own grant.
-- -----------------------------------------------------------------------------
create schema if not exists private;

comment on schema private is
  'Helpers of row-level security and of the API''s functions; not exposed by the Data API.';

revoke all on schema private from public;
grant usage on schema private to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- Shared trigger function: keeps updated_at current on every UPDATE.
-- -----------------------------------------------------------------------------
create or replace function public.set_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $fn$
begin
  new.updated_at := now();
  return new;
end
$fn$;

comment on function public.set_updated_at() is
  'BEFORE UPDATE trigger function: sets updated_at to now() on every row update.';

-- -----------------------------------------------------------------------------
-- general_users
-- -----------------------------------------------------------------------------
create table public.general_users (
  id           uuid primary key references auth.users (id) on delete cascade,
  display_name text not null default '',
  account_name text not null,
  avatar_url   text null,
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now(),
  constraint general_users_account_name_key unique (account_name),
  constraint general_users_account_name_format check (account_name ~ '^[a-z0-9_]{3,32}$')
);

comment on table public.general_users is
  'Application user, one row per auth.users row (same id). Created automatically by the handle_new_user trigger on signup (or by ensure_general_user for older accounts). Readable by every signed-in user so member names can be shown in rooms and members added by account name.';
comment on column public.general_users.id is
  'Same uuid as auth.users.id; deleting the auth user deletes this row and, by cascade, everything the user owns.';
comment on column public.general_users.display_name is
  'Free-form name shown in the UI. Initialised from the signup metadata (display_name, full_name or name) or the email''s local part.';
comment on column public.general_users.account_name is
  'Unique handle used to add a user to a room: 3-32 characters of a-z, 0-9 and _. Initialised from the signup metadata account_name, or derived from the email.';
comment on column public.general_users.avatar_url is
  'Optional picture URL (initialised from OAuth metadata avatar_url/picture when present).';

create trigger general_users_set_updated_at
  before update on public.general_users
  for each row execute function public.set_updated_at();

alter table public.general_users enable row level security;

create policy "general_users: signed-in users read all"
  on public.general_users for select
  to authenticated
  using (true);

create policy "general_users: update own row"
  on public.general_users for update
  to authenticated
  using (id = (select auth.uid()))
  with check (id = (select auth.uid()));

-- No insert/delete policies: rows are created by handle_new_user /
-- ensure_general_user and removed by the cascade from auth.users.

-- -----------------------------------------------------------------------------
-- virtual_users (AI personas)
-- -----------------------------------------------------------------------------
create table public.virtual_users (
  id            bigint generated always as identity primary key,
  owner_id      uuid null references public.general_users (id) on delete cascade,
  name          text not null,
  description   text not null default '',
  system_prompt text not null,
  model         text null,
  temperature   real null,
  max_tokens    integer null,
  is_default    boolean not null default false,
  created_at    timestamptz not null default now(),
  updated_at    timestamptz not null default now(),
  constraint virtual_users_name_length check (char_length(btrim(name)) >= 1 and char_length(name) <= 100),
  constraint virtual_users_temperature_range check (temperature is null or (temperature >= 0 and temperature <= 2)),
  constraint virtual_users_max_tokens_range check (max_tokens is null or (max_tokens >= 1 and max_tokens <= 32000)),
  constraint virtual_users_default_is_admin check (not is_default or owner_id is null)
);

comment on table public.virtual_users is
  'AI personas a chat room can talk to. owner_id null = provided by the admins for everyone; otherwise a private persona of that user.';
comment on column public.virtual_users.owner_id is
  'Owner of a private persona. NULL = admin-provided persona visible to every signed-in user (manage those from the dashboard).';
comment on column public.virtual_users.system_prompt is
  'System prompt sent to the model for this persona (the retrieved context is added by the backend).';
comment on column public.virtual_users.model is
  'Chat model name for this persona. NULL = the backend''s configured default model.';
comment on column public.virtual_users.temperature is
  'Sampling temperature 0..2. NULL = the backend''s default.';
comment on column public.virtual_users.max_tokens is
  'Most tokens an answer may have (1..32000). NULL = the backend''s LLM_MAX_TOKENS.';
comment on column public.virtual_users.is_default is
  'The admins'' default persona, used when a room has none and the user has no preferred persona. At most one row (owner_id null) may have it.';

create index virtual_users_owner_id_idx on public.virtual_users (owner_id);
create unique index virtual_users_single_admin_default
  on public.virtual_users (is_default)
  where is_default and owner_id is null;

create trigger virtual_users_set_updated_at
  before update on public.virtual_users
  for each row execute function public.set_updated_at();

alter table public.virtual_users enable row level security;

-- The select policy is in 20261201000200_chat.sql: members of a room also
-- read the persona that answers in it, which needs the chat tables.

create policy "virtual_users: insert own personas"
  on public.virtual_users for insert
  to authenticated
  with check (owner_id = (select auth.uid()));

create policy "virtual_users: update own personas"
  on public.virtual_users for update
  to authenticated
  using (owner_id = (select auth.uid()))
  with check (owner_id = (select auth.uid()));

create policy "virtual_users: delete own personas"
  on public.virtual_users for delete
  to authenticated
  using (owner_id = (select auth.uid()));

-- -----------------------------------------------------------------------------
-- user_profiles
-- -----------------------------------------------------------------------------
create table public.user_profiles (
  user_id                 uuid primary key references public.general_users (id) on delete cascade,
  default_virtual_user_id bigint null references public.virtual_users (id) on delete set null,
  preferred_language      text null,
  bio                     text null,
  settings                jsonb not null default '{}'::jsonb,
  created_at              timestamptz not null default now(),
  updated_at              timestamptz not null default now()
);

comment on table public.user_profiles is
  'Per-user preferences, one row per general_users row (created together with it). Private to the user.';
comment on column public.user_profiles.default_virtual_user_id is
  'Persona used for new rooms of this user. NULL = the admins'' default persona (virtual_users.is_default). Must be a persona the user can see.';
comment on column public.user_profiles.preferred_language is
  'Preferred answer language (e.g. "en", "ja"). NULL = answer in the language of the question.';
comment on column public.user_profiles.settings is
  'Free-form UI/client settings (JSON object).';

create index user_profiles_default_virtual_user_id_idx on public.user_profiles (default_virtual_user_id);

create trigger user_profiles_set_updated_at
  before update on public.user_profiles
  for each row execute function public.set_updated_at();

alter table public.user_profiles enable row level security;

create policy "user_profiles: read own row"
  on public.user_profiles for select
  to authenticated
  using (user_id = (select auth.uid()));

-- The persona check runs with the user's RLS on virtual_users, so only
-- admin personas and the user's own can be chosen.
create policy "user_profiles: update own row"
  on public.user_profiles for update
  to authenticated
  using (user_id = (select auth.uid()))
  with check (
    user_id = (select auth.uid())
    and (
      default_virtual_user_id is null
      or exists (select 1 from public.virtual_users v where v.id = user_profiles.default_virtual_user_id)
    )
  );

-- -----------------------------------------------------------------------------
-- Provisioning: general_users + user_profiles for an auth user.
-- -----------------------------------------------------------------------------
create or replace function public.provision_general_user(
  p_user_id uuid,
  p_email text,
  p_meta jsonb
)
returns void
language plpgsql
security definer
set search_path = ''
as $fn$
declare
  v_meta      jsonb := coalesce(p_meta, '{}'::jsonb);
  v_local     text := nullif(split_part(coalesce(p_email, ''), '@', 1), '');
  v_requested text := lower(btrim(coalesce(v_meta ->> 'account_name', '')));
  v_hex       text := replace(p_user_id::text, '-', '');
  v_base      text;
  v_display   text;
  v_avatar    text;
  v_candidate text;
  v_candidates text[] := array[]::text[];
  v_inserted  boolean := false;
  i           int;
begin
  if p_user_id is null then
    return;
  end if;

  if not exists (select 1 from public.general_users g where g.id = p_user_id) then
    -- Base account name from the email's local part (or "user").
    v_base := regexp_replace(lower(coalesce(v_local, 'user')), '[^a-z0-9_]', '_', 'g');
    v_base := left(v_base, 32);
    if char_length(v_base) < 3 then
      v_base := rpad(v_base, 3, '_');
    end if;

    -- Candidates in order of preference.
    if v_requested ~ '^[a-z0-9_]{3,32}$' then
      v_candidates := v_candidates || v_requested;
    end if;
    v_candidates := v_candidates || v_base;
    v_candidates := v_candidates || (left(v_base, 25) || '_' || left(v_hex, 6));
    for i in 1..5 loop
      v_candidates := v_candidates
        || (left(v_base, 25) || '_' || left(replace(gen_random_uuid()::text, '-', ''), 6));
    end loop;
    v_candidates := v_candidates || ('u' || left(v_hex, 31));

    v_display := coalesce(
      nullif(btrim(v_meta ->> 'display_name'), ''),
      nullif(btrim(v_meta ->> 'full_name'), ''),
      nullif(btrim(v_meta ->> 'name'), ''),
      v_local,
      ''
    );
    v_avatar := coalesce(
      nullif(btrim(v_meta ->> 'avatar_url'), ''),
      nullif(btrim(v_meta ->> 'picture'), '')
    );

    foreach v_candidate in array v_candidates loop
      continue when exists (
        select 1 from public.general_users g where g.account_name = v_candidate
      );
      begin
        insert into public.general_users (id, display_name, account_name, avatar_url)
        values (p_user_id, coalesce(nullif(v_display, ''), v_candidate), v_candidate, v_avatar)
        on conflict (id) do nothing;
        v_inserted := true;
      exception when unique_violation then
        -- account_name taken concurrently: try the next candidate.
        v_inserted := false;
      end;
      exit when v_inserted;
    end loop;
  end if;

  insert into public.user_profiles (user_id)
  select p_user_id
  where exists (select 1 from public.general_users g where g.id = p_user_id)
  on conflict (user_id) do nothing;
end
$fn$;

comment on function public.provision_general_user(uuid, text, jsonb) is
  'Internal: creates the general_users and user_profiles rows for an auth user if missing (account_name from metadata if valid and free, else derived from the email). Service only.';

revoke all on function public.provision_general_user(uuid, text, jsonb) from public, anon, authenticated;
grant execute on function public.provision_general_user(uuid, text, jsonb) to service_role;

-- AFTER INSERT trigger on auth.users. Never fails the signup: on any error it
-- only logs a warning (ensure_general_user can repair the rows later).
create or replace function public.handle_new_user()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
  begin
    perform public.provision_general_user(new.id, new.email, new.raw_user_meta_data);
  exception when others then
    raise warning using message =
      'handle_new_user: could not create general_users row for auth user '
      || new.id::text || ': ' || sqlerrm;
  end;
  return new;
end
$fn$;

comment on function public.handle_new_user() is
  'AFTER INSERT trigger on auth.users: creates the matching general_users and user_profiles rows. Never fails the signup.';

revoke all on function public.handle_new_user() from public, anon, authenticated;

create trigger on_auth_user_created
  after insert on auth.users
  for each row execute function public.handle_new_user();

-- For accounts that existed before the trigger (or whose provisioning failed).
create or replace function public.ensure_general_user(user_id uuid)
returns boolean
language plpgsql
security definer
set search_path = ''
as $fn$
declare
  v_id    uuid := ensure_general_user.user_id;
  v_email text;
  v_meta  jsonb;
begin
  select u.email, u.raw_user_meta_data
    into v_email, v_meta
    from auth.users u
   where u.id = v_id;
  if not found then
    return false;
  end if;
  perform public.provision_general_user(v_id, v_email, v_meta);
  return true;
end
$fn$;

comment on function public.ensure_general_user(uuid) is
  'Creates the general_users + user_profiles rows for an existing auth.users row if missing. Returns false when no such auth user exists. Service only (not callable by anon/authenticated).';

revoke all on function public.ensure_general_user(uuid) from public, anon, authenticated;
grant execute on function public.ensure_general_user(uuid) to service_role;

-- -----------------------------------------------------------------------------
-- Privileges (Supabase's default privileges grant these too; explicit is safe).
-- anon keeps whatever the defaults give it: with RLS and no anon policies it
-- sees nothing.
-- -----------------------------------------------------------------------------
grant select, insert, update, delete on public.general_users to authenticated, service_role;
grant select, insert, update, delete on public.virtual_users to authenticated, service_role;
grant select, insert, update, delete on public.user_profiles to authenticated, service_role;
grant usage, select on sequence public.virtual_users_id_seq to authenticated, service_role;
