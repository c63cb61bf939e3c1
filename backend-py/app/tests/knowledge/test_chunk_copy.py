"""Chunks reach the table unchanged through COPY's text format.

Backslashes, newlines and a literal ``\\N`` (COPY's NULL) must not be read
as escapes. (The parser already drops tabs and carriage returns.)
"""

from sqlalchemy.ext.asyncio import AsyncConnection

from src.worker.ingestion_worker import IngestionWorker
from tests.knowledge.conftest import chunk_rows, insert_document

AWKWARD = (
    "# Paths\\and\ttabs\n\n"
    "C:\\new\\table has a backslash before n and t; \\N is not NULL.\r\n"
    "A tab\there, a carriage return\rthere."
)


async def test_escapes_survive_the_copy(
    connection: AsyncConnection, worker: IngestionWorker
) -> None:
    document_id = await insert_document(
        connection, owner_id=None, title="Escapes", content=AWKWARD, visibility="shared"
    )
    await worker.drain(only_ids=[document_id])
    chunks = await chunk_rows(connection, document_id)
    text = "".join(chunk.content for chunk in chunks)
    assert "C:\\new\\table" in text
    assert "\\N is not NULL." in text
    assert "\n" in chunks[0].content
    assert chunks[0].heading_path.startswith("Paths\\and")
