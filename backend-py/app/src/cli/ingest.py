"""``make ingest PATH=<file or folder>``: load files into the shared knowledge base.

Every ``.txt``, ``.md``, ``.pdf`` and ``.html`` file under the path becomes a
shared document (``owner_id`` null, visible to every signed-in user), keyed by
its absolute path in ``source``: running the command again skips unchanged
files and re-indexes changed ones. The documents are then indexed here, with
the same worker code the server runs, unless the server's worker is running:
one process embeds at a time (:mod:`src.infra.embedder_lock`), so the command
then waits, showing progress, until the server's worker has indexed them
(``--queue-only`` does not wait). Uses ``DATABASE_URL``, or the embedded
database.

Each file is parsed as the worker parses uploads: in a child process with
``PARSE_TIMEOUT_S`` and ``PARSE_MEMORY_MB`` (a file the admin chose may still be
hostile), its output bounded relative to ``MAX_UPLOAD_BYTES`` or to the file's
own size when it is larger.
"""

import argparse
import asyncio
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from src.domain.errors import DomainError
from src.domain.service.document_parsing import SUPPORTED_EXTENSIONS, ParseLimits
from src.gateway.document_index_gateway import DocumentIndexGateway
from src.infra.ai_providers import build_ai_providers
from src.infra.bounded_parse import BoundedParser, ParseBounds
from src.infra.db_client import Database, open_database
from src.settings import Settings, get_settings
from src.usecase.document_usecase import content_hash
from src.worker.ingestion_worker import IngestionWorker, parse_bounds

WAIT_POLL_S = 1.0
"""How often the documents' states are read while the server's worker indexes."""


@dataclass
class IngestSummary:
    """What one run did.

    Attributes:
        loaded: Files per outcome (added, updated, unchanged, requeued).
        skipped: Files that could not be read, with the reason.
        document_ids: Documents added or changed (to index).
        indexed: Documents per final status after indexing.
        errors: Error text of documents that failed.
        chunks: Chunks written.
        embedded: Chunks that went through the embedding model.
        seconds: Wall time of the indexing phase.
    """

    loaded: Counter[str] = field(default_factory=Counter)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    document_ids: list[int] = field(default_factory=list)
    indexed: Counter[str] = field(default_factory=Counter)
    errors: dict[int, str] = field(default_factory=dict)
    chunks: int = 0
    embedded: int = 0
    seconds: float = 0.0


def find_files(root: Path) -> list[Path]:
    """The supported files at ``root`` (a file, or a folder searched recursively)."""
    if root.is_file():
        return [root]
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in SUPPORTED_EXTENSIONS
    )


async def load_files(
    database: Database,
    files: Sequence[Path],
    *,
    progress: bool = True,
    bounds: ParseBounds | None = None,
) -> IngestSummary:
    """Store each file as a shared document (one transaction per file).

    Args:
        database: Where the documents go.
        files: The files to load.
        progress: Show a progress bar.
        bounds: Limits of each parse (from the settings when omitted).
    """
    bounds = bounds or parse_bounds(get_settings())
    summary = IngestSummary()
    async with BoundedParser(bounds) as parser:
        for path in tqdm(files, desc="loading", unit="file", disable=not progress):
            await _load_file(database, parser, path, summary, bounds=bounds)
    return summary


async def _load_file(
    database: Database,
    parser: BoundedParser,
    path: Path,
    summary: IngestSummary,
    *,
    bounds: ParseBounds,
) -> None:
    """Parse one file and store it as a shared document (in its own transaction)."""
    try:
        data = await asyncio.to_thread(path.read_bytes)
        limits = ParseLimits.relative_to(max(len(data), bounds.limits.max_chars))
        parsed = await parser.parse(path.name, data, None, limits=limits)
    except (DomainError, OSError) as exc:
        summary.skipped.append((path, getattr(exc, "message", str(exc))))
        return
    async with database.service_transaction() as session:
        document_id, outcome = await DocumentIndexGateway(session).upsert_shared(
            source=str(await asyncio.to_thread(path.resolve)),
            title=parsed.title,
            content=parsed.content,
            content_hash=content_hash(parsed.content),
            mime_type=parsed.mime_type,
            metadata=parsed.metadata,
        )
    summary.loaded[outcome] += 1
    if outcome != "unchanged":
        summary.document_ids.append(document_id)


async def index_documents(
    worker: IngestionWorker,
    database: Database,
    summary: IngestSummary,
    *,
    progress: bool = True,
) -> None:
    """Index the summary's documents, or wait for the process that embeds.

    One process embeds per database (:mod:`src.infra.embedder_lock`): when it
    is the server's worker, its documents are left to it and this waits until
    each is ready or failed; otherwise they are indexed here, in batches across
    documents. Then their final status is recorded.
    """
    started = time.perf_counter()
    with tqdm(
        total=len(summary.document_ids),
        desc="indexing",
        unit="doc",
        disable=not progress,
    ) as bar:
        while not await worker.embedder_lock.try_acquire():
            bar.set_description("indexing (by the server's worker)")
            if await _count_finished(database, summary, bar):
                break
            await asyncio.sleep(WAIT_POLL_S)
        else:
            await _index_here(worker, summary, bar)
    await worker.embedder_lock.release()
    summary.seconds = time.perf_counter() - started
    async with database.service_transaction() as session:
        rows = await DocumentIndexGateway(session).statuses(summary.document_ids)
    summary.chunks = sum(row.chunk_count for row in rows)
    for row in rows:
        summary.indexed[row.status] += 1
        if row.error and row.status == "failed":
            summary.errors[row.id] = row.error


async def _index_here(
    worker: IngestionWorker, summary: IngestSummary, bar: "tqdm[Any]"
) -> None:
    """Index the due documents of the summary in this process."""
    while results := await worker.run_batch(only_ids=summary.document_ids):
        for result in results:
            summary.embedded += result.embedded_count
            if result.outcome != "retry":
                bar.update(1)
            summary.chunks += result.chunk_count
        bar.set_postfix(chunks=summary.chunks)


async def _count_finished(
    database: Database, summary: IngestSummary, bar: "tqdm[Any]"
) -> bool:
    """Show how many documents are ready or failed; True when all are."""
    async with database.service_transaction() as session:
        rows = await DocumentIndexGateway(session).statuses(summary.document_ids)
    finished = [row for row in rows if row.status in ("ready", "failed")]
    bar.update(len(finished) - bar.n)
    bar.set_postfix(chunks=sum(row.chunk_count for row in finished))
    return len(finished) == len(rows)


def print_summary(summary: IngestSummary, files: int) -> None:
    """The end-of-run report on stdout."""
    loaded = ", ".join(
        f"{n} {outcome}" for outcome, n in sorted(summary.loaded.items())
    )
    skipped = len(summary.skipped)
    print(f"files: {files} found, {loaded or 'none loaded'}, {skipped} skipped")
    for path, reason in summary.skipped:
        print(f"  skipped {path}: {reason}")
    if summary.document_ids:
        states = ", ".join(f"{n} {s}" for s, n in sorted(summary.indexed.items()))
        rate = summary.chunks / summary.seconds if summary.seconds else 0.0
        print(
            f"indexed: {states}; {summary.chunks} chunks ({summary.embedded} embedded"
            f" here) in {summary.seconds:.1f} s ({rate:.1f} chunks/s)"
        )
    for document_id, error in summary.errors.items():
        print(f"  document {document_id} failed: {error}")


async def run(root: Path, settings: Settings, *, queue_only: bool) -> IngestSummary:
    """Load (and unless ``queue_only``, index) the files under ``root``."""
    files = find_files(root)
    database = await open_database(settings)
    try:
        summary = await load_files(database, files, bounds=parse_bounds(settings))
        if summary.document_ids and not queue_only:
            ai = build_ai_providers(settings)
            worker = IngestionWorker(
                database=database,
                embeddings=ai.embeddings,
                embedding_model_name=ai.embedding_model_name,
                settings=settings,
            )
            try:
                await index_documents(worker, database, summary)
            finally:
                await ai.aclose()
    finally:
        await database.dispose()
    print_summary(summary, len(files))
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments and run; exit status 1 when a document failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="a file or a folder")
    parser.add_argument(
        "--queue-only",
        action="store_true",
        help="store the documents and let the server's worker index them",
    )
    args = parser.parse_args(argv)
    if not args.path.exists():
        parser.error(f"{args.path} does not exist")
    summary = asyncio.run(run(args.path, get_settings(), queue_only=args.queue_only))
    return 1 if summary.errors else 0


if __name__ == "__main__":
    sys.exit(main())
