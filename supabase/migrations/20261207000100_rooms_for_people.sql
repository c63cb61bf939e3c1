-- Rooms for people (issue 20): when the persona answers, and room events.
--
-- 1. chat_rooms.ai_replies: 'mention' (the persona answers a message that
--    names it, "@Name") or 'always' (every message). NULL, the default, means
--    "derived from the members": 'always' while the room has one person,
--    'mention' once it has more. Deriving it needs no write when members come
--    and go, and an owner's explicit choice survives them.
-- 2. Room events through Postgres: a trigger sends a small NOTIFY on the
--    channel 'room_events' (ids only, never content) when a message is saved,
--    a member joins or leaves, or a room is renamed or reconfigured. Every API
--    replica listens once and reads the message back under each member's own
--    row-level security. NOTIFY is sent at commit, in commit order.
-- 3. Supabase Realtime: messages join the 'supabase_realtime' publication
--    where it exists, so supabase-js postgres_changes subscriptions work under
--    the same select policies. The embedded database has no such publication.

alter table public.chat_rooms
  add column ai_replies text
  constraint chat_rooms_ai_replies_check check (ai_replies in ('mention', 'always'));

comment on column public.chat_rooms.ai_replies is
  'When the persona answers a member''s message: ''mention'' (the message names it as @Name, case-insensitive) or ''always''. NULL: ''always'' while the room has one member, ''mention'' with more.';

create function public.notify_room_event()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  payload jsonb;
begin
  if tg_table_name = 'messages' then
    payload := pg_catalog.jsonb_build_object(
      'r', new.chat_room_id, 'k', 'message', 'id', new.id);
  elsif tg_table_name = 'user_chats' and tg_op = 'INSERT' then
    payload := pg_catalog.jsonb_build_object(
      'r', new.chat_room_id, 'k', 'member.joined', 'u', new.user_id);
  elsif tg_table_name = 'user_chats' then
    payload := pg_catalog.jsonb_build_object(
      'r', old.chat_room_id, 'k', 'member.left', 'u', old.user_id);
  else
    payload := pg_catalog.jsonb_build_object('r', new.id, 'k', 'room.updated');
  end if;
  perform pg_catalog.pg_notify('room_events', payload::text);
  return null;
end;
$$;

comment on function public.notify_room_event() is
  'AFTER trigger on messages (insert), user_chats (insert, delete) and chat_rooms (update): NOTIFY room_events with {"r": room id, "k": kind, "id"/"u": message or user id}.';

revoke execute on function public.notify_room_event() from public, anon, authenticated;

create trigger messages_notify_room_event
  after insert on public.messages
  for each row execute function public.notify_room_event();

create trigger user_chats_notify_room_event
  after insert or delete on public.user_chats
  for each row execute function public.notify_room_event();

create trigger chat_rooms_notify_room_event
  after update of title, virtual_user_id, ai_replies on public.chat_rooms
  for each row execute function public.notify_room_event();

do $$
begin
  if exists (select 1 from pg_catalog.pg_publication where pubname = 'supabase_realtime')
     and not exists (
       select 1 from pg_catalog.pg_publication_tables
       where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = 'messages'
     ) then
    alter publication supabase_realtime add table public.messages;
  end if;
end;
$$;
