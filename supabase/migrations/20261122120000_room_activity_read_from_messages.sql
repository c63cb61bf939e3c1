-- =============================================================================
-- A room's latest activity is read from its messages, not written on its row.
--
-- The trigger messages_touch_room updated the room's row for every message
-- (and so fired chat_rooms_set_updated_at too): two row updates per chat
-- turn, all on the few pages that hold every room, where the turn's foreign
-- key checks also lock rows. On the load benchmark (bench/load_bench.py, 50
-- users, 2 cores) the turns ran 8% faster without it: 392 instead of about
-- 360 per second, Postgres CPU per turn 2.19 instead of 2.35 ms.
--
-- The room list reads each room's last message through the index it already
-- uses for the preview (messages_chat_room_id_id_idx), and the API still
-- returns last_message_at. Renaming a room or changing its persona still sets
-- updated_at; a new message no longer does.
--
-- Plain SQL only: safe to send as one multi-statement string through a driver.
-- =============================================================================

drop trigger if exists messages_touch_room on public.messages;
drop function if exists public.messages_touch_room();

alter table public.chat_rooms drop column if exists last_message_at;
