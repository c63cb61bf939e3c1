-- =============================================================================
-- Chat: chat_rooms, user_chats (membership), messages, the membership
-- helpers used by row-level security (schema private), and the select policy
-- of virtual_users (which reads the rooms).
--
-- Part of the 2026-12-01 baseline (see 20261201000100_users.sql).
--
-- Plain SQL only: no psql meta-commands, safe to send as one multi-statement
-- string through a driver.
-- =============================================================================

-- -----------------------------------------------------------------------------
-- chat_rooms
-- -----------------------------------------------------------------------------
create table public.chat_rooms (
  id              bigint generated always as identity primary key,
  title           text not null,
  virtual_user_id bigint null references public.virtual_users (id) on delete set null,
  created_by      uuid not null references public.general_users (id) on delete cascade,
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now(),
  constraint chat_rooms_title_length check (char_length(btrim(title)) >= 1 and char_length(title) <= 200)
);

comment on table public.chat_rooms is
  'A conversation between one or more users and an AI persona. Visible to its members (user_chats) and its creator; only the creator (owner) may rename, delete or manage members.';
comment on column public.chat_rooms.virtual_user_id is
  'Persona answering in this room. NULL = the creator''s default persona (user_profiles.default_virtual_user_id), else the admins'' default.';
comment on column public.chat_rooms.created_by is
  'The room''s owner. Deleting that user deletes the room.';

create index chat_rooms_virtual_user_id_idx on public.chat_rooms (virtual_user_id);
create index chat_rooms_created_by_idx on public.chat_rooms (created_by);

create trigger chat_rooms_set_updated_at
  before update on public.chat_rooms
  for each row execute function public.set_updated_at();

-- -----------------------------------------------------------------------------
-- user_chats (room membership)
-- -----------------------------------------------------------------------------
create table public.user_chats (
  user_id      uuid not null references public.general_users (id) on delete cascade,
  chat_room_id bigint not null references public.chat_rooms (id) on delete cascade,
  role         text not null default 'member',
  joined_at    timestamptz not null default now(),
  created_at   timestamptz not null default now(),
  constraint user_chats_pkey primary key (chat_room_id, user_id),
  constraint user_chats_role_check check (role in ('owner', 'member'))
);

comment on table public.user_chats is
  'Room membership. The creator adds their own row with role owner right after creating the room, then adds other users (role member). Members may leave (delete their row); the owner may remove anyone.';
comment on column public.user_chats.role is
  'owner (the room creator''s own row) or member.';
comment on column public.user_chats.joined_at is
  'When the user was added to the room.';

create index user_chats_user_id_idx on public.user_chats (user_id);

-- -----------------------------------------------------------------------------
-- Membership helpers of the policies, in schema private: security definer, so
-- that a policy reading user_chats or chat_rooms does not recurse into their
-- own policies; executable by authenticated (the policies run as the caller).
-- -----------------------------------------------------------------------------
create or replace function private.is_room_member(room_id bigint)
returns boolean
language sql
stable
security definer
set search_path = ''
as $fn$
  select exists (
    select 1
      from public.user_chats uc
     where uc.chat_room_id = room_id
       and uc.user_id = (select auth.uid())
  )
$fn$;

comment on function private.is_room_member(bigint) is
  'True when the calling user (auth.uid()) has a user_chats row for the room. Used by RLS policies.';

create or replace function private.is_room_owner(room_id bigint)
returns boolean
language sql
stable
security definer
set search_path = ''
as $fn$
  select exists (
    select 1
      from public.chat_rooms r
     where r.id = room_id
       and r.created_by = (select auth.uid())
  )
$fn$;

comment on function private.is_room_owner(bigint) is
  'True when the calling user (auth.uid()) created the room (chat_rooms.created_by). Used by RLS policies.';

-- A select policy on a table read many rows at a time compares with this set,
-- computed once per statement, instead of calling a function per row.
create or replace function private.member_room_ids()
returns setof bigint
language sql
stable
security definer
set search_path = ''
as $fn$
  select uc.chat_room_id
    from public.user_chats uc
   where uc.user_id = (select auth.uid())
$fn$;

comment on function private.member_room_ids() is
  'Ids of the rooms the calling user (auth.uid()) belongs to (user_chats). Used by RLS policies as "chat_room_id in (select private.member_room_ids())".';

create or replace function private.is_persona_of_my_room(persona_id bigint)
returns boolean
language sql
stable
security definer
set search_path = ''
as $fn$
  select exists (
    select 1
      from public.chat_rooms r
      join public.user_chats uc on uc.chat_room_id = r.id
     where r.virtual_user_id = persona_id
       and uc.user_id = (select auth.uid())
  )
$fn$;

comment on function private.is_persona_of_my_room(bigint) is
  'True when the persona answers in a room the calling user (auth.uid()) is a member of. Security definer so the policy on virtual_users does not recurse into chat_rooms.';

revoke all on function private.is_room_member(bigint) from public, anon;
revoke all on function private.is_room_owner(bigint) from public, anon;
revoke all on function private.member_room_ids() from public, anon;
revoke all on function private.is_persona_of_my_room(bigint) from public, anon;
grant execute on function private.is_room_member(bigint) to authenticated, service_role;
grant execute on function private.is_room_owner(bigint) to authenticated, service_role;
grant execute on function private.member_room_ids() to authenticated, service_role;
grant execute on function private.is_persona_of_my_room(bigint) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- RLS: virtual_users (select; the other policies are in the users migration)
-- -----------------------------------------------------------------------------
-- One permissive policy per role and command: Postgres ORs several anyway,
-- and Supabase's advisor asks for one.
create policy "virtual_users: read admin, own and my rooms' personas"
  on public.virtual_users for select
  to authenticated
  using (
    owner_id is null
    or owner_id = (select auth.uid())
    or private.is_persona_of_my_room(id)
  );

comment on policy "virtual_users: read admin, own and my rooms' personas" on public.virtual_users is
  'Admin personas (owner_id NULL), the caller''s own, and a persona owned by another user when it answers in a room the caller is a member of.';

-- -----------------------------------------------------------------------------
-- RLS: chat_rooms
-- -----------------------------------------------------------------------------
alter table public.chat_rooms enable row level security;

-- created_by is included so "insert ... returning" works before the owner's
-- membership row exists.
create policy "chat_rooms: members read"
  on public.chat_rooms for select
  to authenticated
  using (created_by = (select auth.uid()) or private.is_room_member(id));

-- The persona checks run with the user's RLS on virtual_users: only admin
-- personas and the user's own can be attached.
create policy "chat_rooms: create as self"
  on public.chat_rooms for insert
  to authenticated
  with check (
    created_by = (select auth.uid())
    and (
      virtual_user_id is null
      or exists (select 1 from public.virtual_users v where v.id = chat_rooms.virtual_user_id)
    )
  );

create policy "chat_rooms: owner updates"
  on public.chat_rooms for update
  to authenticated
  using (created_by = (select auth.uid()))
  with check (
    created_by = (select auth.uid())
    and (
      virtual_user_id is null
      or exists (select 1 from public.virtual_users v where v.id = chat_rooms.virtual_user_id)
    )
  );

create policy "chat_rooms: owner deletes"
  on public.chat_rooms for delete
  to authenticated
  using (created_by = (select auth.uid()));

-- -----------------------------------------------------------------------------
-- RLS: user_chats
-- -----------------------------------------------------------------------------
alter table public.user_chats enable row level security;

create policy "user_chats: members read the room's members"
  on public.user_chats for select
  to authenticated
  using (
    user_id = (select auth.uid())
    or private.is_room_member(chat_room_id)
    or private.is_room_owner(chat_room_id)
  );

-- Only the room owner adds rows; role owner only for the owner's own row.
create policy "user_chats: owner adds members"
  on public.user_chats for insert
  to authenticated
  with check (
    private.is_room_owner(chat_room_id)
    and (role = 'member' or user_id = (select auth.uid()))
  );

create policy "user_chats: leave or owner removes"
  on public.user_chats for delete
  to authenticated
  using (user_id = (select auth.uid()) or private.is_room_owner(chat_room_id));

-- -----------------------------------------------------------------------------
-- messages
-- -----------------------------------------------------------------------------
create table public.messages (
  id                     bigint generated always as identity primary key,
  chat_room_id           bigint not null references public.chat_rooms (id) on delete cascade,
  sender_user_id         uuid null references public.general_users (id) on delete set null,
  sender_virtual_user_id bigint null references public.virtual_users (id) on delete set null,
  role                   text not null,
  content                text not null,
  status                 text not null default 'complete',
  metadata               jsonb not null default '{}'::jsonb,
  created_at             timestamptz not null default now(),
  updated_at             timestamptz not null default now(),
  constraint messages_role_check check (role in ('user', 'assistant', 'system')),
  constraint messages_status_check check (status in ('complete', 'failed'))
);

comment on table public.messages is
  'Messages of a chat room, in id order. Readable by room members. Deleted together with the room.';
comment on column public.messages.sender_user_id is
  'Human author for role user. NULL for assistant/system messages (or when the author was deleted).';
comment on column public.messages.sender_virtual_user_id is
  'Persona that produced an assistant message.';
comment on column public.messages.role is
  'user (a member wrote it), assistant (AI answer) or system.';
comment on column public.messages.status is
  'complete, or failed when the AI answer could not be produced.';
comment on column public.messages.metadata is
  'JSON: sources (retrieved chunks cited as [n]), model, token usage, latency, error details.';

create index messages_chat_room_id_id_idx on public.messages (chat_room_id, id);
create index messages_sender_user_id_idx on public.messages (sender_user_id);
create index messages_sender_virtual_user_id_idx on public.messages (sender_virtual_user_id);

create trigger messages_set_updated_at
  before update on public.messages
  for each row execute function public.set_updated_at();

alter table public.messages enable row level security;

create policy "messages: members read"
  on public.messages for select
  to authenticated
  using (chat_room_id in (select private.member_room_ids()));

create policy "messages: members post as themselves"
  on public.messages for insert
  to authenticated
  with check (
    role = 'user'
    and sender_user_id = (select auth.uid())
    and private.is_room_member(chat_room_id)
  );

comment on policy "messages: members post as themselves" on public.messages is
  'Members post user messages as themselves. Assistant and system messages are written by the backend as the service role.';

-- No update policy: AI answers are completed by the backend as the service
-- role. No delete policy: messages go away with their room (cascade).

-- -----------------------------------------------------------------------------
-- Privileges
-- -----------------------------------------------------------------------------
grant select, insert, update, delete on public.chat_rooms to authenticated, service_role;
grant select, insert, update, delete on public.user_chats to authenticated, service_role;
grant select, insert, update, delete on public.messages to authenticated, service_role;
grant usage, select on sequence public.chat_rooms_id_seq to authenticated, service_role;
grant usage, select on sequence public.messages_id_seq to authenticated, service_role;
