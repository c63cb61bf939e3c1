"""``make ingest`` and ``make reembed``, on the test database."""

import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from src.cli.ingest import find_files, index_documents, load_files, print_summary
from src.cli.reembed import reembed
from src.gateway.chunk_gateway import ChunkGateway
from tests.knowledge.conftest import Knowledge, chunk_rows, document_row
from tests.knowledge.samples import HTML, MARKDOWN, PLAIN, make_pdf


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    tmp_path = tmp_path.resolve()
    (tmp_path / "sub").mkdir()
    (tmp_path / "notes.txt").write_text(PLAIN)
    (tmp_path / "sub" / "garden.md").write_text(MARKDOWN)
    (tmp_path / "sub" / "bike.html").write_text(HTML)
    (tmp_path / "solar.pdf").write_bytes(make_pdf(["Solar panels."]))
    (tmp_path / "empty.txt").write_text("   ")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    return tmp_path


async def test_folder_is_loaded_as_shared_documents_and_indexed(
    kb: Knowledge, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = find_files(folder)

    summary = await load_files(kb.database, files, progress=False)
    await index_documents(kb.worker, kb.database, summary, progress=False)
    print_summary(summary, len(files))

    assert [p.name for p in files] == [
        "empty.txt",
        "notes.txt",
        "solar.pdf",
        "bike.html",
        "garden.md",
    ]
    assert summary.loaded == {"added": 4}
    assert [(p.name, reason) for p, reason in summary.skipped] == [
        ("empty.txt", "'empty.txt' contains no text")
    ]
    assert summary.indexed == {"ready": 4}
    assert summary.chunks >= 4
    shared = await kb.connection.execute(
        text(
            "select count(*) from documents where owner_id is null "
            "and visibility = 'shared' and status = 'ready' and source like :root"
        ),
        {"root": f"{folder}%"},
    )
    assert shared.scalar_one() == 4
    report = capsys.readouterr().out
    assert "files: 5 found, 4 added, 1 skipped" in report
    assert "indexed: 4 ready" in report


async def test_running_again_skips_unchanged_and_reindexes_changed(
    kb: Knowledge, folder: Path
) -> None:
    first = await load_files(kb.database, find_files(folder), progress=False)
    await index_documents(kb.worker, kb.database, first, progress=False)
    (folder / "notes.txt").write_text(PLAIN + "\nProfit rose too.\n")

    second = await load_files(kb.database, find_files(folder), progress=False)
    await index_documents(kb.worker, kb.database, second, progress=False)

    assert second.loaded == {"unchanged": 3, "updated": 1}
    assert second.indexed == {"ready": 1}
    [changed] = second.document_ids
    contents = " ".join(c.content for c in await chunk_rows(kb.connection, changed))
    assert "Profit rose too." in contents


async def test_single_file_path(tmp_path: Path) -> None:
    path = tmp_path / "one.md"
    path.write_text("# One")
    assert find_files(path) == [path]


async def test_reembed_recomputes_chunks_of_another_model(
    kb: Knowledge, tmp_path: Path, user: uuid.UUID
) -> None:
    path = tmp_path / "a.md"
    path.write_text(MARKDOWN)
    summary = await load_files(kb.database, [path], progress=False)
    await index_documents(kb.worker, kb.database, summary, progress=False)
    [doc] = summary.document_ids
    await kb.connection.execute(
        text(
            "update document_chunks set embedding_model = 'old-model', "
            "ts_config = 'simple' where document_id = :id"
        ),
        {"id": doc},
    )
    await kb.connection.execute(
        text(
            "update documents set embedding_model = 'old-model', centroid = null "
            "where id = :id"
        ),
        {"id": doc},
    )
    model = kb.embeddings.model_name

    count = await reembed(
        kb.database, kb.embeddings, model=model, batch_size=2, progress=False
    )
    async with kb.database.service_transaction() as session:
        chunks = ChunkGateway(session)
        finished = await chunks.finish_documents(model)
        rebuilt = await chunks.set_text_search_config("english")

    rows = await chunk_rows(kb.connection, doc)
    assert count == len(rows) >= 3
    assert finished == 1
    assert rebuilt == len(rows)
    assert {r.embedding_model for r in rows} == {kb.embeddings.model_name}
    row = await document_row(kb.connection, doc)
    assert row.embedding_model == kb.embeddings.model_name
    centroid_off = await kb.connection.execute(
        text(
            "select d.centroid <=> (select avg(c.embedding) from document_chunks c "
            "where c.document_id = d.id) from documents d where d.id = :id"
        ),
        {"id": doc},
    )
    assert centroid_off.scalar_one() < 1e-6  # the page leg's vector, recomputed
    async with kb.search_as(user) as gateway:
        hits = await gateway.search(query="tomato suckers", k=1, chat_room_id=None)
    assert hits[0].document_id == doc
