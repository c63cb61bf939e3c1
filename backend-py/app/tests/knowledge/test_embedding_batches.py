"""One embedder per database, and embedding batches across documents."""

import asyncio
import random
from pathlib import Path

import pytest
from langchain_core.embeddings import Embeddings
from sqlalchemy.ext.asyncio import AsyncConnection

from src.cli.ingest import index_documents, load_files
from src.infra.db_client import Database, libpq_url
from src.infra.embedder_lock import EmbedderLock
from src.infra.embeddings.minilm import MiniLMEmbeddings
from src.settings import Settings
from src.worker.ingestion_worker import IngestionWorker
from tests.knowledge.conftest import chunk_rows, document_row, insert_document

POISON = "POISON"


class RecordingEmbeddings(Embeddings):
    """The real model, recording each request's texts; fails on ``POISON``."""

    def __init__(self, model: MiniLMEmbeddings) -> None:
        self.model = model
        self.requests: list[list[str]] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.requests.append(texts)
        if any(POISON in t for t in texts):
            raise RuntimeError("the model cannot embed this text")
        return self.model.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.model.embed_query(text)


@pytest.fixture
def lock_key() -> int:
    """A lock of this test's own (no other test or server contends for it)."""
    return random.randrange(1, 2**62)  # noqa: S311 - not a secret


def make_worker(
    database: Database,
    embeddings: Embeddings,
    settings: Settings,
    lock_key: int,
) -> IngestionWorker:
    return IngestionWorker(
        database=database,
        embeddings=embeddings,
        embedding_model_name="all-MiniLM-L6-v2-int8",
        settings=settings,
        lock_key=lock_key,
    )


async def test_of_two_workers_only_the_lock_holder_embeds(
    connection: AsyncConnection,
    database: Database,
    embeddings: MiniLMEmbeddings,
    knowledge_settings: Settings,
    lock_key: int,
) -> None:
    first_model = RecordingEmbeddings(embeddings)
    second_model = RecordingEmbeddings(embeddings)
    first = make_worker(database, first_model, knowledge_settings, lock_key)
    second = make_worker(database, second_model, knowledge_settings, lock_key)
    try:
        doc = await insert_document(
            connection, owner_id=None, title="A", content="Alpha text."
        )
        assert [r.outcome for r in await first.run_round()] == ["ready"]
        later = await insert_document(
            connection, owner_id=None, title="B", content="Beta text."
        )

        skipped = await second.run_round()

        assert skipped == []
        assert second_model.requests == []
        assert (await document_row(connection, later)).status == "pending"
        assert first.embedder_lock.held
        assert not second.embedder_lock.held

        await first.stop()  # the lock goes with it
        assert [r.document_id for r in await second.run_round()] == [later]
        assert len(first_model.requests) == len(second_model.requests) == 1
        assert (await document_row(connection, doc)).status == "ready"
    finally:
        await first.stop()
        await second.stop()


async def test_small_documents_are_embedded_in_one_request(
    connection: AsyncConnection,
    database: Database,
    embeddings: MiniLMEmbeddings,
    knowledge_settings: Settings,
    lock_key: int,
) -> None:
    recording = RecordingEmbeddings(embeddings)
    worker = make_worker(database, recording, knowledge_settings, lock_key)
    docs = [
        await insert_document(
            connection, owner_id=None, title=f"Note {n}", content=f"Note {n} text."
        )
        for n in range(5)
    ]

    results = await worker.drain(only_ids=docs)

    assert [(r.document_id, r.outcome, r.chunk_count) for r in results] == [
        (doc, "ready", 1) for doc in docs
    ]
    assert [sorted(r) for r in recording.requests] == [
        sorted(f"Note {n} text." for n in range(5))
    ]
    for n, doc in enumerate(docs):
        [chunk] = await chunk_rows(connection, doc)
        assert chunk.content == f"Note {n} text."
    # The vectors landed on the right documents: each is its own text's.
    for doc in docs:
        [chunk] = await chunk_rows(connection, doc)
        [own] = embeddings.embed_documents([chunk.content])
        stored = await connection.exec_driver_sql(
            f"select embedding <=> '{own}' from document_chunks where id = {chunk.id}"  # noqa: S608
        )
        assert stored.scalar_one() < 1e-3


async def test_a_document_that_cannot_be_embedded_does_not_fail_the_others(
    connection: AsyncConnection,
    database: Database,
    embeddings: MiniLMEmbeddings,
    knowledge_settings: Settings,
    lock_key: int,
) -> None:
    recording = RecordingEmbeddings(embeddings)
    worker = make_worker(database, recording, knowledge_settings, lock_key)
    good = await insert_document(
        connection, owner_id=None, title="Good", content="A good text."
    )
    bad = await insert_document(
        connection, owner_id=None, title="Bad", content=f"A {POISON} text."
    )
    also_good = await insert_document(
        connection, owner_id=None, title="Also good", content="Another text."
    )

    results = await worker.drain(only_ids=[good, bad, also_good])

    outcomes = {(r.document_id, r.outcome) for r in results}
    assert {(good, "ready"), (also_good, "ready"), (bad, "failed")} <= outcomes
    assert (await document_row(connection, good)).status == "ready"
    assert (await document_row(connection, also_good)).status == "ready"
    failed = await document_row(connection, bad)
    assert (failed.status, failed.error) == (
        "failed",
        "the model cannot embed this text",
    )
    assert await chunk_rows(connection, bad) == []
    assert len(recording.requests[0]) == 3  # first tried together


async def test_ingest_waits_for_the_worker_that_holds_the_lock(
    connection: AsyncConnection,
    database: Database,
    embeddings: MiniLMEmbeddings,
    knowledge_settings: Settings,
    lock_key: int,
    tmp_path: Path,
) -> None:
    files = [tmp_path / f"note{n}.md" for n in range(3)]
    for n, path in enumerate(files):
        path.write_text(f"# Note {n}\n\nSome text {n}.")
    server_model = RecordingEmbeddings(embeddings)
    command_model = RecordingEmbeddings(embeddings)
    server = make_worker(database, server_model, knowledge_settings, lock_key)
    command = make_worker(database, command_model, knowledge_settings, lock_key)
    assert await server.embedder_lock.try_acquire()
    try:
        summary = await load_files(database, files, progress=False)
        waiting = asyncio.create_task(
            index_documents(command, database, summary, progress=False)
        )
        await asyncio.sleep(0.2)
        assert not waiting.done()  # nothing is indexed yet: it waits

        await server.drain(only_ids=summary.document_ids)
        await asyncio.wait_for(waiting, timeout=30)
    finally:
        await server.stop()

    assert summary.indexed == {"ready": 3}
    assert summary.chunks == 3
    assert command_model.requests == []
    assert len(server_model.requests) == 1
    assert not command.embedder_lock.held


async def test_a_lock_whose_connection_died_is_taken_again(
    database: Database, lock_key: int
) -> None:
    url = libpq_url(database.engine.url.render_as_string(hide_password=False))
    holder = EmbedderLock(url, key=lock_key)
    other = EmbedderLock(url, key=lock_key)
    assert await holder.try_acquire()
    assert not await other.try_acquire()

    connection = holder._connection  # a dropped connection, simulated
    assert connection is not None
    await connection.close()

    assert await other.try_acquire()
    assert not await holder.try_acquire()
    await other.release()
    await holder.release()
