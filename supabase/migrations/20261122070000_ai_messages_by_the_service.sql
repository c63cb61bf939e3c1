-- =============================================================================
-- AI answers are written by the backend as the service, not by members.
--
-- Until now a member could insert (and update) assistant and system messages
-- in their rooms, because the backend saved the AI's answer in the member's
-- transaction. That also let any member forge "AI" answers through the
-- Supabase API (supabase-js with their own token). The backend now saves the
-- answer as the service role after checking the member's turn (the user
-- message, written under these policies, is what proves membership), so
-- members may only post their own user messages and update none.
-- =============================================================================

drop policy "messages: members post" on public.messages;
drop policy "messages: members update AI messages" on public.messages;

create policy "messages: members post as themselves"
  on public.messages for insert
  to authenticated
  with check (
    role = 'user'
    and sender_user_id = (select auth.uid())
    and public.is_room_member(chat_room_id)
  );

comment on policy "messages: members post as themselves" on public.messages is
  'Members post user messages as themselves. Assistant and system messages are written by the backend as the service role.';
