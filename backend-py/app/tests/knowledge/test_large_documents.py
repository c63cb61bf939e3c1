"""A large document is embedded a slice per turn, between other owners' documents."""

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from src.domain.service.chunking import Chunk, chunk_text
from src.gateway.document_index_gateway import DocumentIndexGateway
from src.infra.db_client import Database
from src.infra.embeddings.minilm import MiniLMEmbeddings
from src.settings import Settings
from src.worker.ingestion_worker import IndexResult, IngestionWorker
from tests.factories import create_user
from tests.knowledge.conftest import (
    chunk_rows,
    claims_of,
    document_row,
    insert_document,
)
from tests.knowledge.test_ingestion_worker import BrokenEmbeddings

PER_TURN = 3
SENTENCE = "Tomatoes need deep watering twice a week and a stake to climb. "
LARGE = "# Kitchen garden\n\n" + "\n\n".join(
    f"## Bed {n}\n\nBed {n}: " + SENTENCE * 5 for n in range(7)
)


@pytest.fixture
def slicing_settings(knowledge_settings: Settings) -> Settings:
    """The knowledge settings with a few chunks per turn."""
    return knowledge_settings.model_copy(update={"worker_chunks_per_turn": PER_TURN})


@pytest.fixture
def slicing_worker(
    database: Database, embeddings: MiniLMEmbeddings, slicing_settings: Settings
) -> IngestionWorker:
    """A worker embedding at most ``PER_TURN`` new chunks of a document per claim."""
    return IngestionWorker(
        database=database,
        embeddings=embeddings,
        embedding_model_name=embeddings.model_name,
        settings=slicing_settings,
    )


def chunk_count(settings: Settings, content: str) -> int:
    """How many chunks the worker cuts ``content`` into."""
    return len(
        chunk_text(
            content,
            chunk_size=settings.chunk_size,
            chunk_overlap=settings.chunk_overlap,
        )
    )


async def staged_count(connection: AsyncConnection, document_id: int) -> int:
    """The vectors kept for the document's next turns."""
    result = await connection.execute(
        text(
            "select count(*) from private.staged_chunk_embeddings "
            "where document_id = :id"
        ),
        {"id": document_id},
    )
    return int(result.scalar_one())


async def run_all(worker: IngestionWorker) -> list[IndexResult]:
    """Claim documents one at a time until none is due."""
    results = []
    while (result := await worker.run_once()) is not None:
        results.append(result)
    return results


async def test_a_large_document_takes_turns_with_other_owners(
    connection: AsyncConnection,
    slicing_worker: IngestionWorker,
    slicing_settings: Settings,
) -> None:
    bulk, other = await create_user(connection), await create_user(connection)
    large = await insert_document(connection, owner_id=bulk, title="L", content=LARGE)
    small = [
        await insert_document(
            connection, owner_id=other, title=f"s{n}", content=f"Note {n}."
        )
        for n in range(2)
    ]
    # Queued a minute ago (the test's transaction has one now()).
    await connection.execute(
        text(
            "update public.documents set next_attempt_at = now() - interval '1 min' "
            "where id = any(:ids)"
        ),
        {"ids": small},
    )
    total = chunk_count(slicing_settings, LARGE)
    assert 2 * PER_TURN < total <= 3 * PER_TURN

    results = await run_all(slicing_worker)

    # After each slice, every other owner's next document goes first.
    turns = [(r.document_id, r.outcome, r.embedded_count) for r in results]
    assert turns == [
        (small[0], "ready", 1),
        (large, "partial", PER_TURN),
        (small[1], "ready", 1),
        (large, "partial", PER_TURN),
        (large, "ready", total - 2 * PER_TURN),
    ]
    row = await document_row(connection, large)
    assert (row.status, row.chunk_count, row.attempts) == ("ready", total, 1)
    chunks = await chunk_rows(connection, large)
    assert [c.chunk_index for c in chunks] == list(range(total))
    assert await staged_count(connection, large) == 0


async def test_a_slice_is_searchable_only_with_the_whole_document(
    connection: AsyncConnection, slicing_worker: IngestionWorker
) -> None:
    owner = await create_user(connection)
    large = await insert_document(connection, owner_id=owner, title="L", content=LARGE)

    result = await slicing_worker.run_once()

    assert result is not None
    assert result.outcome == "partial"
    row = await document_row(connection, large)
    assert (row.status, row.chunk_count) == ("pending", 0)
    assert await chunk_rows(connection, large) == []
    assert await staged_count(connection, large) == PER_TURN
    turn = await connection.execute(
        text("select queue_turn from public.documents where id = :id"), {"id": large}
    )
    assert turn.scalar_one() == 1


async def test_an_edit_keeps_the_slices_of_unchanged_chunks(
    connection: AsyncConnection,
    slicing_worker: IngestionWorker,
    slicing_settings: Settings,
) -> None:
    owner = await create_user(connection)
    large = await insert_document(connection, owner_id=owner, title="L", content=LARGE)
    first = await slicing_worker.run_once()
    assert first is not None
    assert first.outcome == "partial"
    edited = LARGE + "\n\n## Bed 7\n\nBed 7: the new bed, for herbs."
    await connection.execute(
        text("update public.documents set content = :content where id = :id"),
        {"content": edited, "id": large},
    )

    rest = await run_all(slicing_worker)

    # The first slice's chunks are not embedded again after the edit.
    embedded = first.embedded_count + sum(r.embedded_count for r in rest)
    assert embedded == chunk_count(slicing_settings, edited)
    assert rest[-1].outcome == "ready"
    assert (await document_row(connection, large)).chunk_count == chunk_count(
        slicing_settings, edited
    )
    assert await staged_count(connection, large) == 0


async def test_a_failed_document_drops_its_slices(
    connection: AsyncConnection,
    database: Database,
    slicing_worker: IngestionWorker,
    slicing_settings: Settings,
) -> None:
    owner: uuid.UUID = await create_user(connection)
    large = await insert_document(connection, owner_id=owner, title="L", content=LARGE)
    await slicing_worker.run_once()
    assert await staged_count(connection, large) == PER_TURN
    broken = IngestionWorker(
        database=database,
        embeddings=BrokenEmbeddings(),
        embedding_model_name="all-MiniLM-L6-v2-int8",
        settings=slicing_settings,
    )

    outcomes = [r.outcome for r in await run_all(broken)]

    assert outcomes[-1] == "failed"
    assert (await document_row(connection, large)).status == "failed"
    assert await staged_count(connection, large) == 0


async def test_a_sliced_reindex_reuses_the_previous_chunks(
    connection: AsyncConnection,
    slicing_worker: IngestionWorker,
    slicing_settings: Settings,
) -> None:
    owner = await create_user(connection)
    doc = await insert_document(connection, owner_id=owner, title="L", content=LARGE)
    await run_all(slicing_worker)
    beds = "".join(
        f"\n\n## Bed {n}\n\nBed {n}: " + SENTENCE * 5
        for n in range(7, 7 + PER_TURN + 1)
    )
    await connection.execute(
        text("update public.documents set content = :content where id = :id"),
        {"content": LARGE + beds, "id": doc},
    )

    results = await run_all(slicing_worker)

    assert [r.outcome for r in results] == ["partial", "ready"]
    assert sum(r.embedded_count for r in results) == PER_TURN + 1
    total = chunk_count(slicing_settings, LARGE + beds)
    assert (await document_row(connection, doc)).chunk_count == total
    assert await staged_count(connection, doc) == 0


async def test_a_sliced_document_is_cut_into_chunks_once(
    connection: AsyncConnection,
    slicing_worker: IngestionWorker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    owner = await create_user(connection)
    await insert_document(connection, owner_id=owner, title="L", content=LARGE)
    cut: list[str] = []

    def counting_chunk_text(content: str, **options: Any) -> list[Chunk]:
        cut.append(content)
        return chunk_text(content, **options)

    monkeypatch.setattr("src.worker.ingestion_worker.chunk_text", counting_chunk_text)

    results = await run_all(slicing_worker)

    assert [r.outcome for r in results] == ["partial", "partial", "ready"]
    assert cut == [LARGE]


async def test_deleting_a_sliced_document_drops_its_slices(
    connection: AsyncConnection, database: Database, slicing_worker: IngestionWorker
) -> None:
    owner = await create_user(connection)
    large = await insert_document(connection, owner_id=owner, title="L", content=LARGE)
    await slicing_worker.run_once()
    assert await staged_count(connection, large) == PER_TURN

    # As the owner, under row-level security (as DELETE /api/documents/{id}).
    async with database.user_transaction(claims_of(owner)) as session:
        deleted = await session.execute(
            text("delete from public.documents where id = :id returning id"),
            {"id": large},
        )
        assert deleted.scalar_one() == large

    assert await staged_count(connection, large) == 0


async def test_chunks_are_written_in_statements_of_a_bounded_size(
    connection: AsyncConnection,
    worker: IngestionWorker,
    monkeypatch: pytest.MonkeyPatch,
    knowledge_settings: Settings,
) -> None:
    """A large document's chunks do not go in one statement (the timeout)."""
    for statement in (
        "create temporary table copied (rows int)",
        """create function pg_temp.count_copied() returns trigger
           language plpgsql as $$
           begin
             insert into copied select count(*) from new_rows;
             return null;
           end $$""",
        """create trigger count_copied after insert on public.document_chunks
           referencing new table as new_rows
           for each statement execute function pg_temp.count_copied()""",
    ):
        await connection.execute(text(statement))
    monkeypatch.setattr("src.gateway.document_index_gateway.COPY_ROWS", 3)
    owner = await create_user(connection)
    doc = await insert_document(connection, owner_id=owner, title="L", content=LARGE)

    result = await worker.run_once()

    assert result is not None
    assert result.outcome == "ready"
    statements = (await connection.execute(text("select rows from copied"))).scalars()
    total = chunk_count(knowledge_settings, LARGE)
    assert list(statements) == [3, 3, *([total - 6] if total > 6 else [])]
    assert (await document_row(connection, doc)).chunk_count == total


async def test_a_dead_workers_exhausted_slices_are_dropped(
    connection: AsyncConnection,
    slicing_worker: IngestionWorker,
    slicing_settings: Settings,
) -> None:
    owner = await create_user(connection)
    large = await insert_document(connection, owner_id=owner, title="L", content=LARGE)
    await slicing_worker.run_once()
    # Claimed for its last attempt by a worker that died: the lease ran out.
    await connection.execute(
        text(
            "update public.documents set status = 'processing', attempts = :max, "
            "next_attempt_at = now() - interval '1 s' where id = :id"
        ),
        {"max": slicing_settings.worker_max_attempts, "id": large},
    )

    assert await slicing_worker.run_once() is None

    row = await document_row(connection, large)
    assert row.status == "failed"
    assert "did not finish" in row.error
    assert await staged_count(connection, large) == 0


@pytest.fixture
def small_limits_worker(
    database: Database, embeddings: MiniLMEmbeddings, knowledge_settings: Settings
) -> IngestionWorker:
    """A worker of an API that takes bodies and files of at most 1,024 bytes."""
    settings = knowledge_settings.model_copy(
        update={"max_request_bytes": 1024, "max_upload_bytes": 1024}
    )
    return IngestionWorker(
        database=database,
        embeddings=embeddings,
        embedding_model_name=embeddings.model_name,
        settings=settings,
    )


async def test_a_users_document_larger_than_the_api_takes_is_not_indexed(
    connection: AsyncConnection, small_limits_worker: IngestionWorker
) -> None:
    """Written past the API (the Data API), it fails at once, unread."""
    owner = await create_user(connection)
    text_of = {  # a 1,024-byte upload's text is at most 1,024 characters
        "fits": "é" * 2000,  # 4,000 bytes
        "too long": "word " * 900,  # 4,500 bytes
    }
    docs = {
        name: await insert_document(connection, owner_id=owner, title=name, content=c)
        for name, c in text_of.items()
    }
    docs["shared"] = await insert_document(
        connection, owner_id=None, title="shared", content=text_of["too long"]
    )
    docs["file"] = await insert_document(
        connection, owner_id=owner, title="f", content=""
    )
    await connection.execute(
        text(
            "update public.documents set original = :file, mime_type = 'text/html' "
            "where id = :id"
        ),
        {"file": b"<p>" + b"x" * 1100 + b"</p>", "id": docs["file"]},
    )

    results = {r.document_id: r for r in await run_all(small_limits_worker)}

    assert results[docs["fits"]].outcome == "ready"
    assert results[docs["shared"]].outcome == "ready"  # the admins' own
    for name in ("too long", "file"):
        row = await document_row(connection, docs[name])
        assert (row.status, row.attempts, row.chunk_count) == ("failed", 1, 0)
        assert row.error == (
            "too large to index: a document may hold 4096 bytes of text, "
            "and a file 1024 bytes"
        )


async def test_its_owner_sees_how_far_a_large_document_is_indexed(
    auth_client: httpx.AsyncClient,
    slicing_worker: IngestionWorker,
    slicing_settings: Settings,
) -> None:
    created = await auth_client.post(
        "/api/documents", json={"title": "Kitchen garden", "content": LARGE}
    )
    assert created.status_code == 202, created.text
    url = f"/api/documents/{created.json()['id']}"
    assert created.json()["index_progress"] is None

    await slicing_worker.run_once()
    sliced = (await auth_client.get(url)).json()
    await run_all(slicing_worker)
    ready = (await auth_client.get(url)).json()

    total = chunk_count(slicing_settings, LARGE)
    assert sliced["status"] == "pending"
    assert sliced["index_progress"] == round(PER_TURN / total, 3)
    assert (ready["status"], ready["index_progress"]) == ("ready", None)
    listed = (await auth_client.get("/api/documents")).json()["items"]
    assert listed[0]["index_progress"] is None


async def test_a_claim_without_limits_reads_a_users_document(
    connection: AsyncConnection, database: Database
) -> None:
    """The limits are the worker's: the gateway alone reads what it claims."""
    owner = await create_user(connection)
    doc = await insert_document(connection, owner_id=owner, title="L", content=LARGE)

    async with database.service_transaction() as session:
        claim = await DocumentIndexGateway(session).claim_next(
            lease_s=30, max_attempts=3, only_ids=[doc]
        )

    assert claim is not None
    assert (claim.content, claim.too_large) == (LARGE, False)
