"""The full-text leg (``match_document_chunks_text``) as a signed-in user.

A word found in every chunk stands for the common words of a large knowledge
base: the function reads a bounded number of matches, by the GIN index or by
the table (the planner chooses per query), and ranks them.
"""

import json
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.knowledge.conftest import (
    Knowledge,
    chunk_rows,
    insert_chunks,
    insert_document,
)

VECTOR = [1.0] + [0.0] * 383
WIDGETS = [
    "widget widget widget gizmo",
    "a widget and a sprocket",
    "the blue widget spins",
    "widget painted blue",
    *(f"widget spare part number {n}" for n in range(20)),
]
TEXT_SEARCH = text(
    "select chunk_id from public.match_document_chunks_text(:query, 'english', "
    ":model, null, :max_matches, :match_count) order by rank"
)
ONLY_BITMAP = (
    "select set_config('enable_seqscan', 'off', true), "
    "set_config('enable_indexscan', 'off', true)"
)
ONLY_SEQUENTIAL = (
    "select set_config('enable_seqscan', 'on', true), "
    "set_config('enable_bitmapscan', 'off', true), "
    "set_config('enable_indexscan', 'on', true)"
)


async def widget_chunks(kb: Knowledge) -> list[int]:
    """Chunk ids of a shared document whose every chunk says "widget"."""
    doc = await insert_document(kb.connection, owner_id=None, title="w", content="w")
    await insert_chunks(
        kb.connection,
        doc,
        [(content, VECTOR) for content in WIDGETS],
        model=kb.embeddings.model_name,
    )
    return [row.id for row in await chunk_rows(kb.connection, doc)]


async def act_as(connection: AsyncConnection, user_id: uuid.UUID) -> None:
    claims = json.dumps({"sub": str(user_id), "role": "authenticated"})
    await connection.execute(
        text(
            "select set_config('role', 'authenticated', true), "
            "set_config('request.jwt.claims', :claims, true)"
        ),
        {"claims": claims},
    )


async def text_search(
    kb: Knowledge, query: str, *, max_matches: int = 200, match_count: int = 40
) -> list[int]:
    rows = await kb.connection.execute(
        TEXT_SEARCH,
        {
            "query": query,
            "model": kb.embeddings.model_name,
            "max_matches": max_matches,
            "match_count": match_count,
        },
    )
    return [row.chunk_id for row in rows]


async def test_a_word_of_every_chunk_ranks_its_best_match_first(
    kb: Knowledge, user: uuid.UUID
) -> None:
    ids = await widget_chunks(kb)
    await act_as(kb.connection, user)

    best = await text_search(kb, "widget", match_count=3)
    everything = await text_search(kb, "widgets")
    bounded = await text_search(kb, "widget", max_matches=5)

    assert len(best) == 3
    assert best[0] == ids[0]
    assert sorted(everything) == sorted(ids)
    assert len(bounded) == 5
    assert set(bounded) <= set(ids)


async def test_negation_and_phrase_queries_keep_their_meaning(
    kb: Knowledge, user: uuid.UUID
) -> None:
    ids = await widget_chunks(kb)
    await act_as(kb.connection, user)

    without_sprocket = await text_search(kb, "widget -sprocket")
    phrase = await text_search(kb, '"blue widget"')
    both_words = await text_search(kb, "blue widget")

    assert sorted(without_sprocket) == sorted(set(ids) - {ids[1]})
    assert phrase == [ids[2]]
    assert sorted(both_words) == [ids[2], ids[3]]


async def test_the_plan_does_not_change_what_is_found(
    kb: Knowledge, user: uuid.UUID
) -> None:
    await widget_chunks(kb)
    await act_as(kb.connection, user)
    queries = ["widget", "widget part", "sprocket", "widget -blue", '"blue widget"']

    async def results(plan_settings: str) -> list[list[int]]:
        await kb.connection.execute(text(plan_settings))
        return [await text_search(kb, q, max_matches=8) for q in queries]

    by_index = await results(ONLY_BITMAP)
    by_table = await results(ONLY_SEQUENTIAL)

    assert by_index == by_table
    assert [len(found) for found in by_index] == [8, 8, 1, 8, 1]


async def test_hybrid_search_puts_the_keyword_match_first_among_common_words(
    kb: Knowledge, user: uuid.UUID
) -> None:
    ids = await widget_chunks(kb)
    text_only = kb.settings.model_copy(update={"retrieval_vector_weight": 0.0})

    async with kb.search_as(user, text_only) as gateway:
        hits = await gateway.search(query="widget", k=5, chat_room_id=None)

    assert len(hits) == 5
    assert hits[0].chunk_id == ids[0]
    assert hits[0].score > hits[-1].score
