"""The ingestion worker against the real database and the real offline model."""

import asyncio
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from src.infra.db_client import Database
from src.infra.embeddings.minilm import MiniLMEmbeddings
from src.settings import Settings
from src.worker.ingestion_worker import IngestionWorker
from tests.factories import create_user
from tests.knowledge.conftest import chunk_rows, document_row, insert_document
from tests.knowledge.samples import MARKDOWN


class BrokenEmbeddings(MiniLMEmbeddings):
    """Embeddings whose provider is down."""

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        del texts
        raise RuntimeError("embedding service unavailable")


class BlockingEmbeddings(MiniLMEmbeddings):
    """Embeddings that never answer, to stop the worker mid-document."""

    def __init__(self) -> None:
        super().__init__()
        self.started = asyncio.Event()

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        del texts
        self.started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_admin_row_inserted_in_sql_is_indexed(
    connection: AsyncConnection, worker: IngestionWorker
) -> None:
    doc = await insert_document(
        connection, owner_id=None, title="Garden", content=MARKDOWN
    )

    result = await worker.run_once()

    assert result is not None
    assert (result.document_id, result.outcome) == (doc, "ready")
    row = await document_row(connection, doc)
    chunks = await chunk_rows(connection, doc)
    assert row.status == "ready"
    assert row.error is None
    assert row.chunk_count == len(chunks) == result.chunk_count > 0
    assert row.embedding_model == "all-MiniLM-L6-v2-int8"
    assert row.indexed_hash == row.content_hash
    assert {c.heading_path for c in chunks} >= {
        "Gardening guide > Watering",
        "Gardening guide > Pruning",
    }
    assert all(c.embedding_model == row.embedding_model for c in chunks)
    assert await worker.run_once() is None


async def test_reingesting_unchanged_content_does_no_work(
    connection: AsyncConnection, worker: IngestionWorker
) -> None:
    doc = await insert_document(connection, owner_id=None, title="G", content=MARKDOWN)
    await worker.drain()
    before = [c.id for c in await chunk_rows(connection, doc)]

    await connection.execute(
        text("update documents set status = 'pending' where id = :id"), {"id": doc}
    )
    result = await worker.run_once()

    assert result is not None
    assert result.outcome == "unchanged"
    assert result.embedded_count == 0
    assert [c.id for c in await chunk_rows(connection, doc)] == before
    assert (await document_row(connection, doc)).status == "ready"


async def test_changed_content_replaces_the_chunks(
    connection: AsyncConnection, worker: IngestionWorker
) -> None:
    doc = await insert_document(connection, owner_id=None, title="G", content=MARKDOWN)
    await worker.drain()
    old_ids = {c.id for c in await chunk_rows(connection, doc)}

    edited = MARKDOWN.replace("twice a week", "every other day")
    await connection.execute(
        text("update documents set content = :c where id = :id"),
        {"c": edited, "id": doc},
    )
    assert (await document_row(connection, doc)).status == "pending"
    result = await worker.run_once()

    assert result is not None
    assert result.outcome == "ready"
    # Only the edited section's chunk needed the model; the others were reused.
    assert 0 < result.embedded_count < result.chunk_count
    chunks = await chunk_rows(connection, doc)
    assert old_ids.isdisjoint(c.id for c in chunks)
    contents = " ".join(c.content for c in chunks)
    assert "every other day" in contents
    assert "twice a week" not in contents
    row = await document_row(connection, doc)
    assert row.chunk_count == len(chunks)
    assert row.indexed_hash == row.content_hash


async def test_an_edit_during_indexing_is_not_lost(
    connection: AsyncConnection,
    database: Database,
    embeddings: MiniLMEmbeddings,
    knowledge_settings: Settings,
) -> None:
    doc = await insert_document(connection, owner_id=None, title="G", content="v1")

    class EditingEmbeddings(MiniLMEmbeddings):
        async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
            await connection.execute(
                text("update documents set content = 'v2 text' where id = :id"),
                {"id": doc},
            )
            return await embeddings.aembed_documents(texts)

    racing = IngestionWorker(
        database=database,
        embeddings=EditingEmbeddings(),
        embedding_model_name=embeddings.model_name,
        settings=knowledge_settings,
    )
    first = await racing.run_once()

    assert first is not None
    assert first.outcome == "lost"
    assert await chunk_rows(connection, doc) == []
    assert (await document_row(connection, doc)).status == "pending"


async def test_failing_document_is_retried_then_failed_with_its_error(
    connection: AsyncConnection, database: Database, knowledge_settings: Settings
) -> None:
    doc = await insert_document(connection, owner_id=None, title="G", content=MARKDOWN)
    broken = IngestionWorker(
        database=database,
        embeddings=BrokenEmbeddings(),
        embedding_model_name="all-MiniLM-L6-v2-int8",
        settings=knowledge_settings,
    )

    outcomes = [r.outcome for r in await broken.drain()]

    assert outcomes == ["retry", "retry", "failed"]
    row = await document_row(connection, doc)
    assert row.status == "failed"
    assert row.error == "embedding service unavailable"
    assert row.attempts == knowledge_settings.worker_max_attempts
    assert row.chunk_count == 0
    assert await broken.run_once() is None


async def test_retry_waits_for_the_backoff(
    connection: AsyncConnection,
    database: Database,
    knowledge_settings: Settings,
) -> None:
    doc = await insert_document(connection, owner_id=None, title="G", content="x y")
    slow_retry = knowledge_settings.model_copy(update={"worker_retry_base_s": 60.0})
    broken = IngestionWorker(
        database=database,
        embeddings=BrokenEmbeddings(),
        embedding_model_name="m",
        settings=slow_retry,
    )

    first = await broken.run_once()

    assert first is not None
    assert first.outcome == "retry"
    assert await broken.run_once() is None
    due_in = (
        await connection.execute(
            text("select next_attempt_at - now() from documents where id = :id"),
            {"id": doc},
        )
    ).scalar_one()
    assert due_in.total_seconds() == pytest.approx(60.0)


async def test_a_document_without_text_fails_at_once(
    connection: AsyncConnection, worker: IngestionWorker
) -> None:
    doc = await insert_document(connection, owner_id=None, title="G", content=" \n ")

    result = await worker.run_once()

    assert result is not None
    assert result.outcome == "failed"
    row = await document_row(connection, doc)
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.error == "the document has no text to index"


async def test_a_stale_claim_of_a_crashed_worker_is_taken_again(
    connection: AsyncConnection, worker: IngestionWorker
) -> None:
    doc = await insert_document(connection, owner_id=None, title="G", content=MARKDOWN)
    # What a worker that died after claiming leaves behind.
    await connection.execute(
        text(
            "update documents set status = 'processing', attempts = 1, "
            "next_attempt_at = now() - interval '1 second' where id = :id"
        ),
        {"id": doc},
    )

    result = await worker.run_once()

    assert result is not None
    assert (result.document_id, result.outcome) == (doc, "ready")
    assert (await document_row(connection, doc)).attempts == 2


async def test_a_live_claim_is_not_taken_and_an_exhausted_one_fails(
    connection: AsyncConnection, worker: IngestionWorker
) -> None:
    live = await insert_document(connection, owner_id=None, title="A", content="a")
    dead = await insert_document(connection, owner_id=None, title="B", content="b")
    await connection.execute(
        text(
            "update documents set status = 'processing', attempts = 1, "
            "next_attempt_at = now() + interval '5 minutes' where id = :id"
        ),
        {"id": live},
    )
    await connection.execute(
        text(
            "update documents set status = 'processing', attempts = 3, "
            "next_attempt_at = now() - interval '1 second' where id = :id"
        ),
        {"id": dead},
    )

    assert await worker.run_once() is None
    assert (await document_row(connection, live)).status == "processing"
    row = await document_row(connection, dead)
    assert row.status == "failed"
    assert "did not finish after 3 attempts" in row.error


async def test_stopping_mid_document_releases_the_claim(
    connection: AsyncConnection, database: Database, knowledge_settings: Settings
) -> None:
    doc = await insert_document(connection, owner_id=None, title="G", content=MARKDOWN)
    blocking = BlockingEmbeddings()
    stuck = IngestionWorker(
        database=database,
        embeddings=blocking,
        embedding_model_name="m",
        settings=knowledge_settings,
    )
    task = asyncio.create_task(stuck.run_once())
    await asyncio.wait_for(blocking.started.wait(), timeout=10)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    row = await document_row(connection, doc)
    assert (row.status, row.attempts) == ("pending", 0)
    assert await chunk_rows(connection, doc) == []


async def test_only_ids_limits_the_claim(
    connection: AsyncConnection, worker: IngestionWorker
) -> None:
    first = await insert_document(connection, owner_id=None, title="A", content="a")
    second = await insert_document(connection, owner_id=None, title="B", content="b")

    results = await worker.drain(only_ids=[second])

    assert [r.document_id for r in results] == [second]
    assert (await document_row(connection, first)).status == "pending"


async def test_user_documents_are_indexed_too(
    connection: AsyncConnection, worker: IngestionWorker, user: uuid.UUID
) -> None:
    doc = await insert_document(
        connection, owner_id=user, title="Mine", content="My private notes."
    )

    result = await worker.run_once()

    assert result is not None
    assert (result.document_id, result.outcome) == (doc, "ready")


async def test_a_round_indexes_then_refreshes_the_common_words(
    connection: AsyncConnection, worker: IngestionWorker
) -> None:
    doc = await insert_document(connection, owner_id=None, title="G", content=MARKDOWN)
    common = text("select count(*) from public.document_chunk_common_lexemes")
    await worker.drain()
    await connection.execute(text("analyze public.document_chunks"))
    assert (await connection.execute(common)).scalar_one() == 0

    results = await worker.run_round()
    written = await worker.refresh_text_statistics()

    assert results == []  # the document was indexed by the drain before
    assert (await document_row(connection, doc)).status == "ready"
    assert (await connection.execute(common)).scalar_one() > 0
    assert written == 0  # the round already copied them


async def test_owners_take_turns_in_the_queue(
    connection: AsyncConnection, worker: IngestionWorker
) -> None:
    """One user's many uploads do not hold back another user's one."""
    busy = await create_user(connection)
    other = await create_user(connection)
    theirs = [
        await insert_document(
            connection, owner_id=busy, title=f"b{n}", content=f"Bulk page {n}."
        )
        for n in range(4)
    ]
    mine = await insert_document(
        connection, owner_id=other, title="o", content="One page."
    )
    shared = await insert_document(
        connection, owner_id=None, title="s", content="An admin's page."
    )

    order = []
    while (result := await worker.run_once()) is not None:
        order.append(result.document_id)

    assert sorted(order[:3]) == sorted([theirs[0], mine, shared])
    assert order[3:] == theirs[1:]
    turns = await connection.execute(
        text("select queue_turn from documents where id = any(:ids) order by id"),
        {"ids": theirs},
    )
    assert [row.queue_turn for row in turns] == [0, 1, 2, 3]


async def test_a_document_takes_its_turn_when_it_enters_the_queue(
    connection: AsyncConnection, worker: IngestionWorker
) -> None:
    owner = await create_user(connection)
    first = await insert_document(connection, owner_id=owner, title="a", content="A.")
    await worker.drain()
    waiting = [
        await insert_document(connection, owner_id=owner, title=t, content=t + ".")
        for t in ("b", "c")
    ]

    async def turn(doc: int) -> int:
        row = await connection.execute(
            text("select queue_turn from documents where id = :id"), {"id": doc}
        )
        return int(row.scalar_one())

    async def run(statement: str, doc: int) -> None:
        await connection.execute(text(statement), {"id": doc})

    # A retry (processing, then pending again) keeps its place.
    await run("update documents set status = 'processing' where id = :id", waiting[1])
    await run("update documents set status = 'pending' where id = :id", waiting[1])
    # An indexed document whose content changes queues behind the two waiting.
    await run("update documents set content = 'A, edited.' where id = :id", first)

    assert [await turn(doc) for doc in waiting] == [0, 1]
    assert await turn(first) == 2
