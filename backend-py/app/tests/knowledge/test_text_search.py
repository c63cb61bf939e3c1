"""The full-text leg (``private.match_document_chunks_text``) as a signed-in user.

A question matches the chunks holding any of its words, those holding more of
them first; a "phrase" or a -word keeps websearch_to_tsquery's meaning. A word
found in every chunk stands for the common words of a large knowledge base:
the function reads a bounded number of matches, by the GIN index or by the
table, and ranks them. A query with a rare word reads the index (first the
chunks holding all its rare words); a query whose matches may be plentiful
(every word common once ANALYZE has seen them, or a negation) reads the table
in order. For typed syntax both scans find the same rows.
"""

import json
import math
import uuid

import pytest
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
    "select chunk_id from private.match_document_chunks_text(:query, 'english', "
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
    assert sorted(both_words[:2]) == [ids[2], ids[3]]  # both words: first
    assert sorted(both_words) == sorted(ids)  # any word: every chunk


async def test_a_question_finds_the_chunks_holding_any_of_its_words(
    kb: Knowledge, user: uuid.UUID
) -> None:
    ids = await widget_chunks(kb)
    await act_as(kb.connection, user)

    partly = await text_search(kb, "Where does the gizmo spin?")
    every_word = await text_search(kb, "gizmo spin", max_matches=1)

    # No chunk holds both words; each holds one of them.
    assert sorted(partly) == [ids[0], ids[2]]
    assert len(every_word) == 1  # the bound still holds


async def test_chunks_holding_more_of_the_words_rank_first(
    kb: Knowledge, user: uuid.UUID
) -> None:
    ids = await widget_chunks(kb)
    await act_as(kb.connection, user)

    found = await text_search(kb, "which blue widget spins?")

    assert found[:2] == [ids[2], ids[3]]  # three words, then two
    assert sorted(found) == sorted(ids)  # then "widget" alone


async def test_the_chunks_holding_every_rare_word_are_read_first(
    kb: Knowledge, user: uuid.UUID
) -> None:
    ids = await widget_chunks(kb)
    await act_as(kb.connection, user)

    # Twenty chunks say "spare" and "number"; one of them also says "7".
    found = await text_search(kb, "spare part number 7", max_matches=3)

    assert len(found) == 3
    assert found[0] == ids[4 + 7]


async def test_the_plan_does_not_change_what_is_found(
    kb: Knowledge, user: uuid.UUID
) -> None:
    await widget_chunks(kb)
    await act_as(kb.connection, user)
    queries = ["widget", "widget part", "sprocket", "widget -blue", '"blue widget"']

    async def results(plan_settings: str) -> list[list[int]]:
        await kb.connection.execute(text(plan_settings))
        await kb.connection.execute(text("discard plans"))  # plan them anew
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


COMMON_LEXEMES = text(
    "select lexeme, frequency from public.document_chunk_common_lexemes"
)
MATCHES_MANY = text("select private.text_query_matches_many(:query, 'english') as many")
ALL_WORDS_COMMON = text(
    "insert into public.document_chunk_common_lexemes (lexeme, frequency) "
    "select word, 1 from unnest(tsvector_to_array(to_tsvector('english', :text))) "
    "as word on conflict (lexeme) do nothing"
)


async def analyze_and_refresh(connection: AsyncConnection) -> int:
    """ANALYZE the chunks, then copy the common words as the worker does."""
    await connection.execute(text("analyze public.document_chunks"))
    refreshed = await connection.execute(
        text("select public.refresh_document_chunk_common_lexemes()")
    )
    return int(refreshed.scalar_one())


async def scan_of(connection: AsyncConnection, query: str) -> str:
    """Which scan answers ``query``: "table" (plentiful matches) or "index"."""
    many = (await connection.execute(MATCHES_MANY, {"query": query})).scalar_one()
    return "table" if many else "index"


async def listed_lexemes(connection: AsyncConnection) -> dict[str, float]:
    rows = await connection.execute(COMMON_LEXEMES)
    return {row.lexeme: row.frequency for row in rows}


async def common_lexemes(connection: AsyncConnection) -> dict[str, float]:
    """The listed lexemes of at least 5% of the chunks: those the scan choice reads."""
    listed = await listed_lexemes(connection)
    return {lexeme: share for lexeme, share in listed.items() if share >= 0.05}


async def test_the_common_words_are_those_of_five_percent_of_the_chunks(
    kb: Knowledge,
) -> None:
    ids = await widget_chunks(kb)  # 24 chunks

    written = await analyze_and_refresh(kb.connection)
    again = await analyze_and_refresh(kb.connection)
    listed = await listed_lexemes(kb.connection)
    before = await common_lexemes(kb.connection)
    await kb.connection.execute(  # the two chunks that say "blue"
        text("delete from public.document_chunks where id = any(:ids)"),
        {"ids": ids[2:4]},
    )
    changed = await analyze_and_refresh(kb.connection)
    after = await common_lexemes(kb.connection)

    # "blue" is in 2 of 24 chunks (8%), "sprocket" and "gizmo" in 1 (4%).
    assert set(before) == {"widget", "spare", "part", "number", "blue"}
    assert before["widget"] == 1.0
    assert before["blue"] == pytest.approx(2 / 24)
    assert written == len(listed)
    assert again == 0  # nothing changed: nothing written
    assert set(after) == set(before) - {"blue"}
    assert after["spare"] == pytest.approx(20 / 22)
    differences = {w for w in before if after.get(w) != before[w]}
    assert differences == {"blue", "spare", "part", "number"}
    assert changed > 0


async def test_every_listed_word_has_its_share_and_the_rest_the_smallest(
    kb: Knowledge,
) -> None:
    await widget_chunks(kb)  # 24 chunks

    await analyze_and_refresh(kb.connection)
    listed = await listed_lexemes(kb.connection)
    statistics = (
        await kb.connection.execute(
            text(
                "select average_lexemes, rare_frequency "
                "from public.document_chunk_text_statistics"
            )
        )
    ).one()
    idf = (
        await kb.connection.execute(
            text("select private.lexeme_idf(array['widget', 'sprocket', 'zebra'])")
        )
    ).scalar_one()

    # Rarer words than the 5% of the common ones are listed too.
    assert listed["sprocket"] == pytest.approx(1 / 24)
    assert statistics.rare_frequency == pytest.approx(min(listed.values()))
    # widget gizmo; widget sprocket; blue widget spin; widget paint blue;
    # 20 x widget spare part number n.
    assert statistics.average_lexemes == pytest.approx((2 + 2 + 3 + 3 + 20 * 5) / 24)
    # A word in every chunk weighs nothing; an unlisted one the rarest share's.
    assert idf[0] == pytest.approx(0.0)
    assert idf[1] == pytest.approx(math.log(24))
    assert idf[2] == pytest.approx(math.log(1 / statistics.rare_frequency))


async def test_a_rarer_word_outranks_a_commoner_one(
    kb: Knowledge, user: uuid.UUID
) -> None:
    await widget_chunks(kb)  # "spare" in 20 chunks
    doc = await insert_document(kb.connection, owner_id=None, title="t", content="t")
    await insert_chunks(
        kb.connection,
        doc,
        [("a teal item", VECTOR), ("teal things", VECTOR)],
        model=kb.embeddings.model_name,
    )
    teal = [row.id for row in await chunk_rows(kb.connection, doc)]
    await analyze_and_refresh(kb.connection)
    await act_as(kb.connection, user)

    # Each chunk holds one of the words once: ts_rank tied them all (the
    # earlier "spare" chunks first); BM25 puts the rarer "teal" first.
    found = await text_search(kb, "spare teal")

    assert len(found) == 22
    assert found[:2] == teal


async def test_only_queries_whose_matches_may_be_plentiful_read_the_table(
    kb: Knowledge,
) -> None:
    await widget_chunks(kb)
    fresh = {q: await scan_of(kb.connection, q) for q in ("widget", "widget sprocket")}
    await analyze_and_refresh(kb.connection)

    scans = {
        query: await scan_of(kb.connection, query)
        for query in (
            "widget",  # every word common
            "spare widget part",
            "widget sprocket",  # a rare word: the index finds few rows
            "gizmo",
            "widget or sprocket",  # any word: "sprocket" is rare
            "sprocket -widget",  # a negation: plentiful whatever the words
            '"widget sprocket" or gizmo',  # an OR next to a phrase: plentiful
        )
    }

    # Without statistics (a new database) every AND query takes the index.
    assert fresh == {"widget": "index", "widget sprocket": "index"}
    assert scans == {
        "widget": "table",
        "spare widget part": "table",
        "widget sprocket": "index",
        "gizmo": "index",
        "widget or sprocket": "index",
        "sprocket -widget": "table",
        '"widget sprocket" or gizmo': "table",
    }


async def test_a_question_of_common_words_reads_a_bounded_table_scan(
    kb: Knowledge, user: uuid.UUID
) -> None:
    ids = await widget_chunks(kb)
    await analyze_and_refresh(kb.connection)  # widget, blue, spare, ... common
    scans = {q: await scan_of(kb.connection, q) for q in ("blue widget", "sprocket")}
    await act_as(kb.connection, user)

    bounded = await text_search(kb, "blue widget", max_matches=5)
    rare = await text_search(kb, "the widget with a sprocket", max_matches=5)

    assert scans == {"blue widget": "table", "sprocket": "index"}
    assert len(bounded) == 5
    assert set(bounded) <= set(ids)
    # A rare word: only the chunks holding it are candidates.
    assert rare == [ids[1]]


async def test_both_scans_find_the_same_rows_for_typed_syntax(
    kb: Knowledge, user: uuid.UUID
) -> None:
    await widget_chunks(kb)
    queries = [
        "widget",
        '"spare part"',
        "sprocket",
        '"widget and a sprocket"',
        "widget -blue",
        '"blue widget"',
        '"gizmo" or sprocket',
        '"number 7"',
        '"nothing matches this"',
        "the",  # only a stop word: an empty query
    ]
    # No common words yet: every AND query reads the index.
    await act_as(kb.connection, user)
    by_index = [await text_search(kb, query, max_matches=8) for query in queries]
    await kb.connection.execute(text("reset role"))
    # Every word of every chunk common: every query reads the table.
    await kb.connection.execute(ALL_WORDS_COMMON, {"text": " ".join(WIDGETS)})
    await kb.connection.execute(ALL_WORDS_COMMON, {"text": " ".join(queries)})
    scans = {await scan_of(kb.connection, query) for query in queries}
    await act_as(kb.connection, user)
    by_table = [await text_search(kb, query, max_matches=8) for query in queries]

    assert scans == {"table"}
    assert by_index == by_table
    assert [len(ids) for ids in by_index] == [8, 8, 1, 1, 8, 1, 2, 1, 0, 0]
