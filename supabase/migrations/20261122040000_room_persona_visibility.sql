-- Members of a room see the persona that answers in it, even when the persona
-- belongs to another member (a user's own persona used in a shared room).

create or replace function public.is_persona_of_my_room(persona_id bigint)
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

comment on function public.is_persona_of_my_room(bigint) is
  'True when the persona answers in a room the calling user (auth.uid()) is a member of. Security definer so the policy on virtual_users does not recurse into chat_rooms.';

revoke all on function public.is_persona_of_my_room(bigint) from public, anon;
grant execute on function public.is_persona_of_my_room(bigint) to authenticated, service_role;

create policy "virtual_users: members of rooms using it read"
  on public.virtual_users for select
  to authenticated
  using (public.is_persona_of_my_room(id));

comment on policy "virtual_users: members of rooms using it read" on public.virtual_users is
  'A persona owned by one user is readable by every member of a room it answers in.';
