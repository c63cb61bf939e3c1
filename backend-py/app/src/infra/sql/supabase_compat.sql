-- =============================================================================
-- supabase_compat.sql
--
-- DEVELOPMENT / TEST ONLY. This file is NEVER applied to a real Supabase
-- project. It makes a plain PostgreSQL (the embedded development/test
-- database) look enough like Supabase's Postgres for the migrations in
-- supabase/migrations/ to apply unchanged and for row-level security to
-- behave as it does behind PostgREST:
--
--   * roles anon, authenticated, service_role, authenticator
--   * schemas auth and extensions, pgvector installed in extensions
--   * auth.users with Supabase's (GoTrue's) column names and types
--   * auth.uid(), auth.role(), auth.email(), auth.jwt() as Supabase defines them
--   * Supabase's grants and default privileges on schema public
--
-- A request is simulated the way PostgREST does it, inside a transaction:
--   set local role authenticated;
--   select set_config('request.jwt.claims',
--                     '{"sub":"<user uuid>","role":"authenticated"}', true);
--
-- Idempotent: running it again is a no-op. It refuses to run against a real
-- Supabase database (where supabase_admin / supabase_auth_admin exist), and
-- everything runs in one transaction, so after that refusal nothing is
-- changed even if the client keeps going after errors.
-- The file contains no psql meta-commands (it can be sent by a driver as one
-- multi-statement string).
-- =============================================================================

begin;

-- Guard: real Supabase has these roles; a plain Postgres does not.
do $guard$
begin
  if exists (
    select 1 from pg_catalog.pg_roles
    where rolname in ('supabase_admin', 'supabase_auth_admin')
  ) then
    raise exception 'supabase_compat.sql must not be applied to a real Supabase database (role supabase_admin or supabase_auth_admin exists)';
  end if;
end
$guard$;

-- -----------------------------------------------------------------------------
-- Roles (cluster-wide). Same attributes as Supabase's initial schema.
-- -----------------------------------------------------------------------------
do $roles$
begin
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'authenticator') then
    create role authenticator noinherit login;
  end if;

  -- PostgREST's login role switches to these; postgres gets them too so the
  -- backend connected as postgres can "set local role authenticated".
  if not exists (
    select 1 from pg_catalog.pg_auth_members m
    join pg_catalog.pg_roles r on r.oid = m.roleid
    join pg_catalog.pg_roles u on u.oid = m.member
    where r.rolname = 'anon' and u.rolname = 'authenticator'
  ) then
    grant anon to authenticator;
  end if;
  if not exists (
    select 1 from pg_catalog.pg_auth_members m
    join pg_catalog.pg_roles r on r.oid = m.roleid
    join pg_catalog.pg_roles u on u.oid = m.member
    where r.rolname = 'authenticated' and u.rolname = 'authenticator'
  ) then
    grant authenticated to authenticator;
  end if;
  if not exists (
    select 1 from pg_catalog.pg_auth_members m
    join pg_catalog.pg_roles r on r.oid = m.roleid
    join pg_catalog.pg_roles u on u.oid = m.member
    where r.rolname = 'service_role' and u.rolname = 'authenticator'
  ) then
    grant service_role to authenticator;
  end if;
  if not exists (
    select 1 from pg_catalog.pg_auth_members m
    join pg_catalog.pg_roles r on r.oid = m.roleid
    join pg_catalog.pg_roles u on u.oid = m.member
    where r.rolname = 'anon' and u.rolname = 'postgres'
  ) then
    grant anon to postgres;
  end if;
  if not exists (
    select 1 from pg_catalog.pg_auth_members m
    join pg_catalog.pg_roles r on r.oid = m.roleid
    join pg_catalog.pg_roles u on u.oid = m.member
    where r.rolname = 'authenticated' and u.rolname = 'postgres'
  ) then
    grant authenticated to postgres;
  end if;
  if not exists (
    select 1 from pg_catalog.pg_auth_members m
    join pg_catalog.pg_roles r on r.oid = m.roleid
    join pg_catalog.pg_roles u on u.oid = m.member
    where r.rolname = 'service_role' and u.rolname = 'postgres'
  ) then
    grant service_role to postgres;
  end if;
end
$roles$;

-- Supabase puts "extensions" on postgres's search_path, so unqualified
-- pgvector operators (<=>, <->) resolve. Takes effect for new sessions.
alter role postgres set search_path = "$user", public, extensions;

-- -----------------------------------------------------------------------------
-- Schemas and extensions
-- -----------------------------------------------------------------------------
create schema if not exists auth;
create schema if not exists extensions;

create extension if not exists vector with schema extensions;

grant usage on schema public     to anon, authenticated, service_role;
grant usage on schema extensions to anon, authenticated, service_role;
-- Supabase grants usage on auth so policies can call auth.uid().
grant usage on schema auth       to anon, authenticated, service_role;

-- -----------------------------------------------------------------------------
-- auth.users: GoTrue's columns, names and types (no grants to the API roles,
-- as on Supabase). Only id gets a default here, for test convenience.
-- -----------------------------------------------------------------------------
-- Remember (for this transaction) whether this is the first application.
do $first$
begin
  perform set_config(
    'supabase_compat.first_run',
    (to_regclass('auth.users') is null)::text,
    true
  );
end
$first$;

create table if not exists auth.users (
  instance_id                 uuid null,
  id                          uuid not null default gen_random_uuid(),
  aud                         varchar(255) null,
  role                        varchar(255) null,
  email                       varchar(255) null,
  encrypted_password          varchar(255) null,
  email_confirmed_at          timestamptz null,
  invited_at                  timestamptz null,
  confirmation_token          varchar(255) null,
  confirmation_sent_at        timestamptz null,
  recovery_token              varchar(255) null,
  recovery_sent_at            timestamptz null,
  email_change_token_new      varchar(255) null,
  email_change                varchar(255) null,
  email_change_sent_at        timestamptz null,
  last_sign_in_at             timestamptz null,
  raw_app_meta_data           jsonb null,
  raw_user_meta_data          jsonb null,
  is_super_admin              boolean null,
  created_at                  timestamptz null,
  updated_at                  timestamptz null,
  phone                       text null default null,
  phone_confirmed_at          timestamptz null,
  phone_change                text null default '',
  phone_change_token          varchar(255) null default '',
  phone_change_sent_at        timestamptz null,
  confirmed_at                timestamptz generated always as (least(email_confirmed_at, phone_confirmed_at)) stored,
  email_change_token_current  varchar(255) null default '',
  email_change_confirm_status smallint null default 0
    check (email_change_confirm_status >= 0 and email_change_confirm_status <= 2),
  banned_until                timestamptz null,
  reauthentication_token      varchar(255) null default '',
  reauthentication_sent_at    timestamptz null,
  is_sso_user                 boolean not null default false,
  deleted_at                  timestamptz null,
  is_anonymous                boolean not null default false,
  constraint users_pkey primary key (id),
  constraint users_phone_key unique (phone)
);

comment on table auth.users is
  'Development stand-in for Supabase Auth''s users table (created by supabase_compat.sql, never present in this form on a real project).';

create unique index if not exists users_email_partial_key
  on auth.users (email) where (is_sso_user = false);
create index if not exists users_instance_id_idx on auth.users (instance_id);
create index if not exists users_is_anonymous_idx on auth.users (is_anonymous);

-- -----------------------------------------------------------------------------
-- auth functions, as Supabase (GoTrue migrations) defines them.
-- -----------------------------------------------------------------------------
create or replace function auth.uid()
returns uuid
language sql stable
as $fn$
  select
    coalesce(
      nullif(current_setting('request.jwt.claim.sub', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$fn$;

create or replace function auth.role()
returns text
language sql stable
as $fn$
  select
    coalesce(
      nullif(current_setting('request.jwt.claim.role', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
$fn$;

create or replace function auth.email()
returns text
language sql stable
as $fn$
  select
    coalesce(
      nullif(current_setting('request.jwt.claim.email', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
    )::text
$fn$;

create or replace function auth.jwt()
returns jsonb
language sql stable
as $fn$
  select
    coalesce(
      nullif(current_setting('request.jwt.claim', true), ''),
      nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$fn$;

grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt()
  to anon, authenticated, service_role;

-- -----------------------------------------------------------------------------
-- Privileges on schema public, as Supabase grants them. RLS (enabled by the
-- migrations on every table) is what actually restricts anon/authenticated.
-- -----------------------------------------------------------------------------
--
-- The one-off "grant all on all ..." runs only on the first application
-- (auth.users did not exist yet): a re-run after the migrations must not
-- hand execute on service-only functions back to anon/authenticated.
do $grants$
begin
  if current_setting('supabase_compat.first_run', true) = 'true' then
    grant all on all tables    in schema public to anon, authenticated, service_role;
    grant all on all sequences in schema public to anon, authenticated, service_role;
    grant all on all functions in schema public to anon, authenticated, service_role;
  end if;
end
$grants$;

alter default privileges for role postgres in schema public
  grant all on tables    to anon, authenticated, service_role;
alter default privileges for role postgres in schema public
  grant all on sequences to anon, authenticated, service_role;
alter default privileges for role postgres in schema public
  grant all on functions to anon, authenticated, service_role;

commit;
