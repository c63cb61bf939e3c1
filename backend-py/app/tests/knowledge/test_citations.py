"""Citations point at the passage: PDF pages, heading path and character span.

Through the API: a two-page PDF upload and a Markdown document are indexed by
the worker, then the chat's JSON answer, its SSE ``sources`` event and the
room's history all carry where each source lies.
"""

from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from src.cli.reembed import reembed
from src.infra.db_client import Database
from src.infra.embeddings.minilm import MiniLMEmbeddings
from src.settings import Settings
from src.worker.ingestion_worker import IngestionWorker
from tests.knowledge.samples import make_paged_pdf
from tests.support.sse import sse_events

SOLAR_PAGE = [
    "Solar panels on the roof turn sunlight into direct current.",
    "Panels face south at a tilt of thirty degrees for the best yield.",
    "Clean the glass twice a year with soft water and no detergent.",
    "Snow slides off the panels on its own within a day or two.",
    "Birds nesting under the panels are kept out with a wire mesh.",
    "The panels are bolted to rails that are screwed into the rafters.",
    "Each panel weighs about twenty kilograms and carries its own label.",
]
INVERTER_PAGE = [
    "The inverter warranty of the Kestrel unit lasts twelve years.",
    "The inverter turns the direct current into alternating current.",
]
GARDEN = """# Garden handbook

Notes for the community garden.

## Watering

Water the tomatoes every morning before nine, at the roots and never the leaves.

## Pruning

Prune the roses in early spring, just above an outward facing bud.
"""


async def document_content(connection: AsyncConnection, document_id: int) -> str:
    row = await connection.execute(
        text("select content from documents where id = :id"), {"id": document_id}
    )
    return str(row.scalar_one())


def source_of(sources: list[dict[str, Any]], document_id: int) -> dict[str, Any]:
    return next(s for s in sources if s["document_id"] == document_id)


def assert_span_opens_with_snippet(content: str, source: dict[str, Any]) -> None:
    span = source["span"]
    passage = content[span["start"] : span["end"]]
    snippet_words = source["snippet"].removesuffix("…").split()
    assert passage.split()[: len(snippet_words)] == snippet_words


async def index_documents(
    auth_client: httpx.AsyncClient, worker: IngestionWorker
) -> tuple[int, int]:
    pdf = make_paged_pdf([SOLAR_PAGE, INVERTER_PAGE], title="Solar manual")
    uploaded = await auth_client.post(
        "/api/documents", files={"file": ("solar.pdf", pdf, "application/pdf")}
    )
    markdown = await auth_client.post(
        "/api/documents", json={"title": "Garden handbook", "content": GARDEN}
    )
    assert uploaded.status_code == markdown.status_code == 202
    results = await worker.drain()
    assert {r.outcome for r in results} == {"extracted", "ready"}
    return uploaded.json()["id"], markdown.json()["id"]


async def test_sources_carry_pages_heading_and_span_in_json_sse_and_history(
    auth_client: httpx.AsyncClient,
    worker: IngestionWorker,
    connection: AsyncConnection,
) -> None:
    pdf_id, garden_id = await index_documents(auth_client, worker)
    pdf_text = await document_content(connection, pdf_id)
    garden_text = await document_content(connection, garden_id)

    asked = await auth_client.post(
        "/api/chat", json={"message": "How long is the Kestrel inverter warranty?"}
    )
    assert asked.status_code == 200, asked.text
    answer = asked.json()
    inverter = source_of(answer["sources"], pdf_id)
    assert inverter["pages"] == {"first": 2, "last": 2}
    assert inverter["heading_path"] == ""
    assert "warranty" in inverter["snippet"]
    assert_span_opens_with_snippet(pdf_text, inverter)
    room_id = answer["chat_room_id"]

    payload = {"message": "When should tomatoes be watered?", "chat_room_id": room_id}
    async with auth_client.stream("POST", "/api/chat/stream", json=payload) as stream:
        events = sse_events((await stream.aread()).decode().splitlines())
    [streamed] = [data["sources"] for name, data in events if name == "sources"]
    watering = source_of(streamed, garden_id)
    assert watering["heading_path"] == "Garden handbook > Watering"
    assert watering["pages"] is None
    assert "tomatoes" in watering["snippet"]
    assert_span_opens_with_snippet(garden_text, watering)

    history = await auth_client.get(f"/api/chat-rooms/{room_id}/messages")
    answers = [m for m in history.json()["messages"] if m["role"] == "assistant"]
    assert [a["sources"] for a in answers] == [answer["sources"], streamed]


async def chunk_locations(
    connection: AsyncConnection, document_id: int
) -> list[tuple[object, ...]]:
    rows = await connection.execute(
        text(
            "select chunk_index, page_start, page_end, char_start, char_end "
            "from document_chunks where document_id = :id order by chunk_index"
        ),
        {"id": document_id},
    )
    return [tuple(r) for r in rows]


async def test_reembedding_and_reindexing_keep_the_locations(
    auth_client: httpx.AsyncClient,
    worker: IngestionWorker,
    connection: AsyncConnection,
    database: Database,
    embeddings: MiniLMEmbeddings,
    knowledge_settings: Settings,
) -> None:
    pdf_id, garden_id = await index_documents(auth_client, worker)
    before = {d: await chunk_locations(connection, d) for d in (pdf_id, garden_id)}
    assert {page for _, page, *_ in before[pdf_id]} == {1, 2}
    assert all(start is not None for *_, start, _ in before[garden_id])

    assert await reembed(database, embeddings, model="other", batch_size=8) > 0
    after_reembed = {d: await chunk_locations(connection, d) for d in before}
    await connection.execute(
        text("update documents set status = 'pending' where id = any(:ids)"),
        {"ids": [pdf_id, garden_id]},
    )
    reindexing = IngestionWorker(
        database=database,
        embeddings=embeddings,
        embedding_model_name="another",
        settings=knowledge_settings,
    )
    outcomes = [r.outcome for r in await reindexing.drain()]
    after_reindex = {d: await chunk_locations(connection, d) for d in before}

    assert outcomes == ["ready", "ready"]
    assert after_reembed == after_reindex == before
