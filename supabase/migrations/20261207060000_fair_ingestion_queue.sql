-- =============================================================================
-- The ingestion queue takes turns between owners.
--
-- The worker took due documents first in, first out (by next_attempt_at): one
-- user uploading within the API's rate limit can queue more chunks a minute
-- than the embedding model handles, and every other user's document then
-- waited behind all of theirs.
--
-- documents.queue_turn is a document's place among its owner's waiting
-- documents when it was queued: 0 when the owner had none pending or being
-- indexed, 1 behind one, and so on. The worker takes documents by turn, then
-- by due time, so every owner's first waiting document comes before anyone's
-- second. The turn is set when a document enters the queue (inserted, or its
-- content changed, or requeued after it failed); a retry after an error and a
-- released claim keep it. Admins' shared documents (no owner) take turns as
-- one owner. The turn counts at most 100 waiting documents.
-- =============================================================================

alter table public.documents
  add column queue_turn int not null default 0 check (queue_turn >= 0);

comment on column public.documents.queue_turn is
  'The document''s place among its owner''s waiting (pending or processing) documents when it entered the queue (at most 100): 0 when the owner had none. The indexing worker takes due documents by queue_turn, then next_attempt_at, so every owner''s first waiting document comes before anyone''s second. Set by the documents_prepare trigger.';

create index documents_fair_queue_idx on public.documents (queue_turn, next_attempt_at)
  where status in ('pending', 'processing');

-- An owner's waiting documents, counted for each document queued (an owner's
-- indexed documents, however many, are not read).
create index documents_waiting_owner_idx on public.documents (owner_id)
  where status in ('pending', 'processing');

create or replace function public.documents_prepare()
returns trigger
language plpgsql
set search_path = ''
as $fn$
begin
  if new.owner_id is null then
    new.visibility := 'shared';
  elsif new.visibility = 'shared' then
    raise exception using
      errcode = '42501',
      message = 'only admins can share documents (shared documents have no owner_id)';
  end if;

  new.content_hash := encode(sha256(convert_to(new.content, 'UTF8')), 'hex');

  if tg_op = 'UPDATE'
     and new.content_hash is distinct from old.content_hash
     and new.status is not distinct from old.status then
    new.status := 'pending';
    new.error := null;
    new.attempts := 0;
    new.next_attempt_at := now();
  end if;

  -- Entering the queue (not a retry or a released claim, which keep their
  -- turn): behind the owner's documents already waiting.
  if new.status = 'pending'
     and (tg_op = 'INSERT' or old.status not in ('pending', 'processing')) then
    -- Counted up to 100: past that, an owner's documents keep their order
    -- among themselves, and a bulk load of many documents costs no more
    -- than 100 rows read per document.
    new.queue_turn := (
      select count(*)
        from (
          select 1
            from public.documents d
           where d.status in ('pending', 'processing')
             and (d.owner_id = new.owner_id
                  or (new.owner_id is null and d.owner_id is null))
             and d.id is distinct from new.id
           limit 100
        ) waiting
    );
  end if;

  return new;
end
$fn$;

comment on function public.documents_prepare() is
  'BEFORE INSERT/UPDATE trigger on documents: owner_id NULL forces visibility shared; users cannot share; sets content_hash; a content change without an explicit status change re-queues the document (status pending, error NULL, attempts 0); a document entering the queue takes its queue_turn behind its owner''s waiting documents.';
