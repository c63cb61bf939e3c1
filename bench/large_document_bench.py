"""How long one user's small document waits behind another user's large one.

A user uploads a large text document (``--megabytes``, the upload limit by
default); five seconds later another user uploads a one-line note. The worker
(the offline model, as ``make run`` builds it) drains the queue; this prints
how long the note took to be ready after it was queued, and how long the
large document took. ``--chunks-per-turn`` is ``WORKER_CHUNKS_PER_TURN``: pass
a number larger than the document's chunks to see the worker embed it whole.
Its own embedded PostgreSQL runs in a temporary folder (deleted afterwards).
Results go to ``bench/results/ingestion.md``.

    uv run --frozen python ../../bench/large_document_bench.py [--megabytes 10]
"""

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import text

APP_DIR = Path(__file__).resolve().parents[1] / "backend-py" / "app"
sys.path.insert(0, str(APP_DIR))

from src.infra.db_client import Database, create_engine  # noqa: E402
from src.infra.embedded_postgres import start_embedded_postgres  # noqa: E402
from src.infra.embeddings.minilm import MiniLMEmbeddings  # noqa: E402
from src.infra.migrations import apply_compat_layer, apply_migrations  # noqa: E402
from src.settings import Settings  # noqa: E402
from src.worker.ingestion_worker import IngestionWorker  # noqa: E402

WORDS = ("the", "of", "and", "garden", "tomato", "water", "soil", "bed", "leaf", "sun")
NOTE_DELAY_S = 5.0


def large_text(size_bytes: int) -> str:
    """Paragraphs of garden words, a heading every fifth, about ``size_bytes``."""
    rng = random.Random(1)
    paragraphs: list[str] = []
    size = 0
    while size < size_bytes:
        heading = (
            f"## Section {len(paragraphs)}\n\n" if len(paragraphs) % 5 == 0 else ""
        )
        paragraph = heading + " ".join(rng.choice(WORDS) for _ in range(120)) + "."
        paragraphs.append(paragraph)
        size += len(paragraph) + 2
    return "\n\n".join(paragraphs)


async def insert(database: Database, owner: uuid.UUID, title: str, content: str) -> int:
    """A user's document, pending as an upload leaves it (written as the service)."""
    async with database.service_transaction() as session:
        row = await session.execute(
            text(
                "insert into public.documents (owner_id, title, content) "
                "values (:owner, :title, :content) returning id"
            ),
            {"owner": owner, "title": title, "content": content},
        )
        return int(row.scalar_one())


async def new_user(database: Database) -> uuid.UUID:
    """A signed-up user (the signup trigger adds their profile)."""
    async with database.service_transaction() as session:
        row = await session.execute(
            text(
                "insert into auth.users (id, email) "
                "values (gen_random_uuid(), :email) returning id"
            ),
            {"email": f"{uuid.uuid4().hex[:12]}@example.com"},
        )
        return uuid.UUID(str(row.scalar_one()))


async def statuses(database: Database) -> dict[int, str]:
    """Every document's status, by id."""
    async with database.service_transaction() as session:
        rows = await session.execute(text("select id, status from public.documents"))
        return {int(r.id): str(r.status) for r in rows}


async def measure(database: Database, settings: Settings, size_bytes: int) -> str:
    """Queue the large document, then the note; time both until ready."""
    bulk, other = await new_user(database), await new_user(database)
    large = await insert(database, bulk, "Large", large_text(size_bytes))
    embeddings = MiniLMEmbeddings()
    worker = IngestionWorker(
        database=database,
        embeddings=embeddings,
        embedding_model_name=embeddings.model_name,
        settings=settings,
    )
    started = time.perf_counter()
    draining = asyncio.create_task(worker.drain())
    await asyncio.sleep(NOTE_DELAY_S)
    note = await insert(database, other, "Note", "A short note about watering.")
    queued = time.perf_counter()
    ready: dict[int, float] = {}
    while len(ready) < 2:
        await asyncio.sleep(0.2)
        for document, status in (await statuses(database)).items():
            if status == "ready" and document not in ready:
                ready[document] = time.perf_counter()
        if draining.done() and len(ready) < 2:
            raise SystemExit(f"the worker stopped early: {await statuses(database)}")
    results = await draining
    chunks = max(r.chunk_count for r in results)
    return (
        f"{size_bytes:,} bytes, {chunks:,} chunks, WORKER_CHUNKS_PER_TURN="
        f"{settings.worker_chunks_per_turn}: the note was ready "
        f"{ready[note] - queued:.1f} s after it was queued; the large document "
        f"after {ready[large] - started:.1f} s"
    )


async def main() -> None:
    """Start a scratch database, measure once, print the result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=10.0)
    parser.add_argument("--chunks-per-turn", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="large-document-bench-") as folder:
        server = start_embedded_postgres(Path(folder))
        try:
            apply_compat_layer(server.conninfo())
            apply_migrations(server.conninfo())
            settings = Settings(
                _env_file=None,
                environment="test",
                database_url=server.url(),
                worker_enabled=False,
                log_level="WARNING",
            )
            if args.chunks_per_turn is not None:
                settings = settings.model_copy(
                    update={"worker_chunks_per_turn": args.chunks_per_turn}
                )
            assert settings.database_url
            database = Database(engine=create_engine(settings.database_url, settings))
            try:
                print(
                    await measure(database, settings, int(args.megabytes * 1_000_000))
                )
            finally:
                await database.dispose()
        finally:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
