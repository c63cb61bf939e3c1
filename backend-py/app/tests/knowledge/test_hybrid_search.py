"""Hybrid retrieval through EmbeddingsGateway, as users (row-level security on)."""

import uuid

import numpy as np
import pytest
from sqlalchemy import text

from src.gateway.embeddings_gateway import full_text_query
from tests.factories import add_member, create_room, create_user
from tests.knowledge.conftest import (
    Knowledge,
    insert_chunks,
    insert_document,
    nested_plans,
)

FORCE_INDEX_SCAN = (
    "select set_config('enable_seqscan', 'off', true), "
    "set_config('enable_bitmapscan', 'off', true), "
    "set_config('enable_sort', 'off', true)"
)

CORPUS = {
    "Password help": (
        "If you forgot your login secret, open the sign-in page and choose "
        "'recover account'. We e-mail you a link to choose a new one."
    ),
    "Shipping": "Parcels leave our warehouse within two business days.",
    "Error codes": "Code ZX-4471 means the flux regulator lost calibration.",
    "Refunds": "Refunds are paid back to the original card within a week.",
    "Office": "The office kitchen is cleaned every Friday afternoon.",
}


async def index_corpus(kb: Knowledge, owner: uuid.UUID | None) -> dict[str, int]:
    ids = {
        title: await insert_document(
            kb.connection, owner_id=owner, title=title, content=content
        )
        for title, content in CORPUS.items()
    }
    await kb.worker.drain()
    return ids


async def test_exact_keyword_and_paraphrase_rank_first(
    kb: Knowledge, user: uuid.UUID
) -> None:
    ids = await index_corpus(kb, owner=None)

    async with kb.search_as(user) as gateway:
        keyword = await gateway.search(query="ZX-4471", k=3, chat_room_id=None)
        paraphrase = await gateway.search(
            query="how do I reset my password", k=3, chat_room_id=None
        )

    assert keyword[0].document_id == ids["Error codes"]
    assert paraphrase[0].document_id == ids["Password help"]
    assert paraphrase[0].title == "Password help"
    assert paraphrase[0].score > paraphrase[1].score > 0
    assert len(keyword) == len(paraphrase) == 3


async def test_hits_carry_what_a_citation_needs(kb: Knowledge, user: uuid.UUID) -> None:
    doc = await insert_document(
        kb.connection,
        owner_id=user,
        title="Guide",
        content="# Guide\n\n## Brakes\n\nReplace brake pads when the groove is gone.",
    )
    await kb.worker.drain()

    async with kb.search_as(user) as gateway:
        [hit] = await gateway.search(query="brake pads", k=1, chat_room_id=None)

    assert hit.document_id == doc
    assert hit.title == "Guide"
    assert hit.heading_path == "Guide > Brakes"
    assert "Replace brake pads" in hit.content
    assert hit.chunk_id > 0


async def test_user_never_retrieves_another_users_private_chunks(
    kb: Knowledge,
) -> None:
    alice = await create_user(kb.connection)
    bob = await create_user(kb.connection)
    secret = await insert_document(
        kb.connection,
        owner_id=bob,
        title="Bob's diary",
        content="Bob's secret: the vault code is 9931 swordfish.",
    )
    await kb.worker.drain()
    query = "vault code swordfish"

    async with kb.search_as(alice) as gateway:
        alice_hits = await gateway.search(query=query, k=5, chat_room_id=None)
    async with kb.search_as(bob) as gateway:
        bob_hits = await gateway.search(query=query, k=5, chat_room_id=None)

    assert secret not in {h.document_id for h in alice_hits}
    assert bob_hits[0].document_id == secret


async def test_room_documents_only_in_that_room_and_for_members(
    kb: Knowledge,
) -> None:
    owner = await create_user(kb.connection)
    member = await create_user(kb.connection)
    outsider = await create_user(kb.connection)
    room = await create_room(kb.connection, owner)
    other_room = await create_room(kb.connection, owner)
    await add_member(kb.connection, room, member)
    doc = await insert_document(
        kb.connection,
        owner_id=owner,
        title="Room plan",
        content="The team offsite happens in Lisbon in May.",
        visibility="room",
        chat_room_id=room,
    )
    await kb.worker.drain()

    async def found(user: uuid.UUID, room_id: int | None) -> bool:
        async with kb.search_as(user) as gateway:
            hits = await gateway.search(
                query="where is the team offsite", k=5, chat_room_id=room_id
            )
        return doc in {h.document_id for h in hits}

    assert await found(member, room)
    assert await found(owner, room)
    assert not await found(member, None)
    assert not await found(owner, other_room)
    assert not await found(outsider, room)


async def test_filtered_search_still_returns_k_results(kb: Knowledge) -> None:
    """Other users' chunks are nearest to the query; ours are behind them."""
    me = await create_user(kb.connection)
    stranger = await create_user(kb.connection)
    rng = np.random.default_rng(7)
    query = kb.embeddings.embed_query("quarterly revenue by region")
    base = np.asarray(query, dtype=np.float32)

    def near(distance: float) -> list[float]:
        v = base + distance * rng.standard_normal(base.shape).astype(np.float32)
        return list(v / np.linalg.norm(v))

    model = kb.embeddings.model_name
    theirs = await insert_document(
        kb.connection, owner_id=stranger, title="theirs", content="x"
    )
    await insert_chunks(
        kb.connection,
        theirs,
        [(f"stranger chunk {i}", near(0.02)) for i in range(400)],
        model=model,
    )
    mine = await insert_document(kb.connection, owner_id=me, title="mine", content="y")
    await insert_chunks(
        kb.connection,
        mine,
        [(f"my chunk {i}", near(0.08)) for i in range(8)],
        model=model,
    )

    # At this size the planner would rather scan exactly; make it walk the
    # HNSW index, as it does at scale, where filters could starve the scan.
    await kb.connection.execute(text(FORCE_INDEX_SCAN))
    async with nested_plans(kb.connection) as plans, kb.search_as(me) as gateway:
        hits = await gateway.search_with_embedding(
            query="nomatchword", embedding=query, k=8, chat_room_id=None
        )

    assert "document_chunks_embedding_hnsw_idx" in "\n".join(plans)
    assert len(hits) == 8
    assert {h.document_id for h in hits} == {mine}


async def test_chunks_of_another_embedding_model_are_ignored(
    kb: Knowledge, user: uuid.UUID
) -> None:
    vector = kb.embeddings.embed_query("solar inverter")
    old = await insert_document(kb.connection, owner_id=None, title="o", content="a")
    await insert_chunks(kb.connection, old, [("solar inverter", vector)], model="old")
    new = await insert_document(kb.connection, owner_id=None, title="n", content="b")
    await insert_chunks(
        kb.connection,
        new,
        [("solar inverter", vector)],
        model=kb.embeddings.model_name,
    )

    async with kb.search_as(user) as gateway:
        hits = await gateway.search(query="solar inverter", k=5, chat_room_id=None)

    assert [h.document_id for h in hits] == [new]


async def test_documents_not_ready_are_not_searched(
    kb: Knowledge, user: uuid.UUID
) -> None:
    doc = await insert_document(
        kb.connection, owner_id=user, title="t", content="Zebra crossings are striped."
    )
    await kb.worker.drain()
    await kb.connection.execute(
        text("update documents set content = 'Changed text.' where id = :id"),
        {"id": doc},
    )

    async with kb.search_as(user) as gateway:
        hits = await gateway.search(query="zebra crossing", k=5, chat_room_id=None)

    assert doc not in {h.document_id for h in hits}


async def test_a_zero_weight_switches_a_leg_off(kb: Knowledge, user: uuid.UUID) -> None:
    ids = await index_corpus(kb, owner=user)
    no_pages = {"retrieval_page_weight": 0.0}
    vector_only = kb.settings.model_copy(
        update={"retrieval_text_weight": 0.0} | no_pages
    )
    text_only = kb.settings.model_copy(
        update={"retrieval_vector_weight": 0.0} | no_pages
    )

    async with kb.search_as(user, vector_only) as gateway:
        by_vector = await gateway.search(query="money back", k=5, chat_room_id=None)
    async with kb.search_as(user, text_only) as gateway:
        by_text = await gateway.search(query="kitchen", k=5, chat_room_id=None)

    assert by_vector[0].document_id == ids["Refunds"]
    assert len(by_vector) == 5
    assert [h.document_id for h in by_text] == [ids["Office"]]


async def test_a_document_s_centroid_is_the_mean_of_its_chunk_embeddings(
    kb: Knowledge,
) -> None:
    long_page = " ".join(
        f"Sentence {n} of a long page about parcels." for n in range(40)
    )
    doc = await insert_document(
        kb.connection, owner_id=None, title="L", content=long_page
    )
    await kb.worker.drain()

    row = (
        await kb.connection.execute(
            text(
                "select d.chunk_count, "
                "d.centroid <=> (select avg(c.embedding) from public.document_chunks c "
                "where c.document_id = d.id) as off "
                "from public.documents d where d.id = :id"
            ),
            {"id": doc},
        )
    ).one()

    assert row.chunk_count > 1
    assert row.off < 1e-6


async def test_the_nearest_pages_add_their_rank_to_their_best_chunk(
    kb: Knowledge, user: uuid.UUID
) -> None:
    await index_corpus(kb, owner=None)
    no_pages = kb.settings.model_copy(update={"retrieval_page_weight": 0.0})
    two_pages = kb.settings.model_copy(update={"retrieval_pages": 2})
    query = "how do I reset my password"

    async with kb.search_as(user, no_pages) as gateway:
        before = await gateway.search(query=query, k=5, chat_room_id=None)
    async with kb.search_as(user, two_pages) as gateway:
        after = await gateway.search(query=query, k=5, chat_room_id=None)

    # One chunk per document here: the two nearest pages' chunks gain
    # 1 / (60 + 1) and 1 / (60 + 2), the others nothing.
    gains = sorted(
        (a.score - b.score for a in after for b in before if a.chunk_id == b.chunk_id),
        reverse=True,
    )
    assert len(gains) == 5
    assert gains[0] == pytest.approx(1 / 61)
    assert gains[1] == pytest.approx(1 / 62)
    assert gains[2:] == [0.0, 0.0, 0.0]
    assert after[0].chunk_id == before[0].chunk_id


async def test_queries_full_of_dashes_do_not_break_full_text(
    kb: Knowledge, user: uuid.UUID
) -> None:
    await index_corpus(kb, owner=None)
    rule = "-" * 60
    query = f"===== {rule} Character Meaning {rule} 'r' open --flag - x"

    async with kb.search_as(user) as gateway:
        hits = await gateway.search(query=query, k=3, chat_room_id=None)

    assert len(hits) == 3
    assert full_text_query(query) == "===== Character Meaning 'r' open flag x"
    assert full_text_query("refund -card") == "refund -card"


async def test_each_candidates_document_is_read_by_its_primary_key(
    kb: Knowledge, user: uuid.UUID
) -> None:
    """Neither leg reads every document to check the candidates' visibility.

    A join, or row-level security on the chunks, hashed the whole documents
    table on every search: a cost that grew with the number of documents.
    """
    for n in range(30):
        doc = await insert_document(
            kb.connection, owner_id=None, title=f"d{n}", content="x"
        )
        await insert_chunks(
            kb.connection,
            doc,
            [(f"gearbox manual page {n}", kb.embeddings.embed_query(f"gearbox {n}"))],
            model=kb.embeddings.model_name,
        )
    await kb.connection.execute(text("analyze documents, document_chunks"))

    await kb.connection.execute(text(FORCE_INDEX_SCAN))
    async with nested_plans(kb.connection) as plans, kb.search_as(user) as gateway:
        hits = await gateway.search(query="gearbox manual", k=5, chat_room_id=None)

    def legs_plan(leg_query: str) -> str:
        [plan] = [p for p in plans if f"Query Text: {leg_query}" in p]
        return plan

    assert len(hits) == 5
    for leg in ("with nearest", "with candidates"):  # the vector leg, full text
        assert "Index Scan using documents_pkey" in legs_plan(leg)
    assert "hashed SubPlan" not in "\n".join(plans)
    assert "Hash Join" not in "\n".join(plans)


async def test_the_vector_leg_alone_keeps_to_what_the_caller_may_read(
    kb: Knowledge,
) -> None:
    owner = await create_user(kb.connection)
    member = await create_user(kb.connection)
    outsider = await create_user(kb.connection)
    room = await create_room(kb.connection, owner)
    await add_member(kb.connection, room, member)
    vector = kb.embeddings.embed_query("offsite in Lisbon")
    docs = {}
    for name, owner_id, visibility, room_id in (
        ("shared", None, "shared", None),
        ("everyone's", None, "shared", None),
        ("owner's", owner, "private", None),
        ("room's", owner, "room", room),
    ):
        docs[name] = await insert_document(
            kb.connection,
            owner_id=owner_id,
            title=name,
            content="x",
            visibility=visibility,
            chat_room_id=room_id,
        )
        await insert_chunks(
            kb.connection, docs[name], [(name, vector)], model=kb.embeddings.model_name
        )
    await kb.connection.execute(  # being indexed again: not searchable
        text("update documents set status = 'processing' where id = :id"),
        {"id": docs["shared"]},
    )

    async def readable(user: uuid.UUID, room_id: int | None) -> set[str]:
        async with kb.search_as(user) as search:
            rows = await search.session.execute(
                text(
                    "select document_id from private.match_document_chunks_vector("
                    "cast(:embedding as extensions.vector), :model, :room, 10)"
                ),
                {
                    "embedding": str(vector),
                    "model": kb.embeddings.model_name,
                    "room": room_id,
                },
            )
            found = {row.document_id for row in rows}
        return {name for name, doc in docs.items() if doc in found}

    assert await readable(owner, room) == {"everyone's", "owner's", "room's"}
    assert await readable(member, room) == {"everyone's", "room's"}
    assert await readable(member, None) == {"everyone's"}
    assert await readable(outsider, room) == {"everyone's"}
