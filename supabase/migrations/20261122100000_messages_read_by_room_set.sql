-- =============================================================================
-- Members read messages through the set of their rooms, computed once per
-- statement, instead of one membership lookup per message.
--
-- "messages: members read" called public.is_room_member(chat_room_id) for
-- every row a query looked at: reading a room's history of 40 messages ran 40
-- lookups (a security-definer function, never inlined). The policy now asks
-- whether the row's room is in public.member_room_ids(), which Postgres
-- evaluates once per statement and probes as a hash (Supabase's advice for
-- fast policies: a sub-select instead of a per-row function call). Same
-- rows are visible as before.
-- =============================================================================

create or replace function public.member_room_ids()
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

comment on function public.member_room_ids() is
  'Ids of the rooms the calling user (auth.uid()) belongs to (user_chats). Used by RLS policies as "chat_room_id in (select public.member_room_ids())".';

revoke all on function public.member_room_ids() from public, anon;
grant execute on function public.member_room_ids() to authenticated, service_role;

drop policy "messages: members read" on public.messages;

create policy "messages: members read"
  on public.messages for select
  to authenticated
  using (chat_room_id in (select public.member_room_ids()));
