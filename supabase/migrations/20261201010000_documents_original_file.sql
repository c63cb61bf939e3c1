-- Uploaded PDF and HTML files are stored as they came and parsed by the
-- ingestion worker in a bounded child process, not by the API (issue 19): a
-- hostile file costs one failed document, not the service.

alter table public.documents
  add column original bytea null,
  add column original_sha256 text null;

comment on column public.documents.original is
  'The uploaded file (PDF or HTML) until the worker has extracted its text into content; NULL for text documents and once extracted. A document with an original is parsed before it is chunked.';
comment on column public.documents.original_sha256 is
  'sha256 (hex) of the uploaded file, set by the API: the same file uploaded again to the same place is the same document. Kept after extraction.';
