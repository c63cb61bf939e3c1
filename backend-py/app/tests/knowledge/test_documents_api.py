"""The documents and search API over HTTP, on the test's rolled-back database."""

import hashlib
import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from src.worker.ingestion_worker import IngestionWorker
from tests.factories import auth_headers, create_room, create_user, mint_token
from tests.knowledge.conftest import (
    chunk_rows,
    document_row,
    insert_document,
)
from tests.knowledge.samples import HTML, MARKDOWN, PLAIN, make_pdf

UPLOADS = [
    ("notes.txt", "text/plain", PLAIN.encode(), "notes", "twelve percent"),
    ("garden.md", "text/markdown", MARKDOWN.encode(), "Gardening guide", "suckers"),
    ("bike.html", "text/html", HTML.encode(), "Bicycle maintenance", "brake pads"),
    (
        "solar.pdf",
        "application/pdf",
        make_pdf(["Solar panels convert sunlight into electricity."]),
        "solar",
        "sunlight",
    ),
]


@pytest.mark.parametrize("sample", UPLOADS, ids=[u[0] for u in UPLOADS])
async def test_uploaded_file_is_queued_indexed_and_searchable(
    auth_client: httpx.AsyncClient,
    worker: IngestionWorker,
    sample: tuple[str, str, bytes, str, str],
) -> None:
    filename, content_type, data, title, phrase = sample
    created = await auth_client.post(
        "/api/documents", files={"file": (filename, data, content_type)}
    )
    assert created.status_code == 202, created.text
    document = created.json()
    assert document["status"] == "pending"
    assert document["source"] == filename
    assert document["visibility"] == "private"
    assert document["mime_type"] == content_type

    await worker.drain()

    detail = await auth_client.get(f"/api/documents/{document['id']}")
    assert detail.json()["status"] == "ready"
    assert detail.json()["title"] == title
    assert detail.json()["chunk_count"] >= 1
    found = await auth_client.post("/api/search", json={"query": phrase, "k": 3})
    assert found.status_code == 200
    hits = found.json()["hits"]
    assert hits[0]["document_id"] == document["id"]
    assert phrase in hits[0]["content"]
    assert hits[0]["score"] > 0


async def test_json_document_and_same_content_again(
    auth_client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    body = {"title": "Recipe", "content": "Boil pasta for nine minutes."}

    first = await auth_client.post("/api/documents", json=body)
    again = await auth_client.post("/api/documents", json=body)

    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    row = await document_row(connection, first.json()["id"])
    assert row.status == "pending"


async def test_list_shows_only_own_documents_with_status(
    auth_client: httpx.AsyncClient,
    connection: AsyncConnection,
    worker: IngestionWorker,
) -> None:
    other = await create_user(connection)
    await insert_document(connection, owner_id=other, title="Not mine", content="x")
    await insert_document(connection, owner_id=None, title="Shared", content="y")
    mine = (
        await auth_client.post(
            "/api/documents", json={"title": "Mine", "content": "Mine text."}
        )
    ).json()
    await worker.drain()

    listed = await auth_client.get("/api/documents")

    assert listed.status_code == 200
    items = listed.json()["items"]
    assert [(d["id"], d["status"]) for d in items] == [(mine["id"], "ready")]
    assert items[0]["chunk_count"] == 1
    assert "content" not in items[0]


async def test_list_is_paged(auth_client: httpx.AsyncClient) -> None:
    for n in range(3):
        await auth_client.post(
            "/api/documents", json={"title": f"d{n}", "content": f"text {n}"}
        )

    page = await auth_client.get("/api/documents", params={"limit": 2, "offset": 1})

    assert [d["title"] for d in page.json()["items"]] == ["d1", "d0"]


async def test_others_private_document_is_404_and_shared_is_readable(
    auth_client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    other = await create_user(connection)
    private = await insert_document(connection, owner_id=other, title="P", content="x")
    shared = await insert_document(connection, owner_id=None, title="S", content="y")

    hidden = await auth_client.get(f"/api/documents/{private}")
    visible = await auth_client.get(f"/api/documents/{shared}")
    missing = await auth_client.get("/api/documents/999999999")

    assert hidden.status_code == 404
    assert hidden.json()["error"] == "not_found"
    assert visible.status_code == 200
    assert visible.json()["visibility"] == "shared"
    assert visible.json()["owner_id"] is None
    assert missing.status_code == 404


async def test_delete_removes_the_document_and_its_chunks(
    auth_client: httpx.AsyncClient,
    connection: AsyncConnection,
    worker: IngestionWorker,
) -> None:
    created = await auth_client.post(
        "/api/documents", json={"title": "Temp", "content": "Delete me soon."}
    )
    doc = created.json()["id"]
    await worker.drain()
    assert len(await chunk_rows(connection, doc)) == 1

    deleted = await auth_client.delete(f"/api/documents/{doc}")
    again = await auth_client.delete(f"/api/documents/{doc}")

    assert deleted.status_code == 204
    assert again.status_code == 404
    assert await chunk_rows(connection, doc) == []
    assert (await auth_client.get(f"/api/documents/{doc}")).status_code == 404


async def test_cannot_delete_shared_or_others_documents(
    auth_client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    other = await create_user(connection)
    theirs = await insert_document(connection, owner_id=other, title="T", content="x")
    shared = await insert_document(connection, owner_id=None, title="S", content="y")

    assert (await auth_client.delete(f"/api/documents/{theirs}")).status_code == 404
    assert (await auth_client.delete(f"/api/documents/{shared}")).status_code == 404
    count = await connection.execute(
        text("select count(*) from documents where id in (:a, :b)"),
        {"a": theirs, "b": shared},
    )
    assert count.scalar_one() == 2


async def test_room_document_needs_membership(
    auth_client: httpx.AsyncClient, connection: AsyncConnection, user: uuid.UUID
) -> None:
    my_room = await create_room(connection, user)
    stranger = await create_user(connection)
    their_room = await create_room(connection, stranger)

    ok = await auth_client.post(
        "/api/documents",
        json={
            "title": "R",
            "content": "r",
            "visibility": "room",
            "chat_room_id": my_room,
        },
    )
    refused = await auth_client.post(
        "/api/documents",
        json={
            "title": "R",
            "content": "r",
            "visibility": "room",
            "chat_room_id": their_room,
        },
    )
    upload = await auth_client.post(
        "/api/documents",
        files={"file": ("a.txt", b"room file", "text/plain")},
        data={"visibility": "room", "chat_room_id": str(my_room), "title": "Mine"},
    )

    assert ok.status_code == 202
    assert ok.json()["chat_room_id"] == my_room
    assert refused.status_code == 404
    assert upload.status_code == 202
    assert (upload.json()["visibility"], upload.json()["title"]) == ("room", "Mine")


@pytest.mark.parametrize(
    "body",
    [
        {"title": "", "content": "x"},
        {"title": "t"},
        {"title": "t", "content": "x", "visibility": "shared"},
        {"title": "t", "content": "x", "visibility": "room"},
        {"title": "t", "content": "x", "chat_room_id": 1},
        {"title": "t", "content": "x", "unknown": 1},
    ],
)
async def test_invalid_json_documents_are_422(
    auth_client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    response = await auth_client.post("/api/documents", json=body)

    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"


async def test_malformed_json_is_422(auth_client: httpx.AsyncClient) -> None:
    response = await auth_client.post(
        "/api/documents",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 422


async def test_unsupported_file_type_is_415(auth_client: httpx.AsyncClient) -> None:
    response = await auth_client.post(
        "/api/documents", files={"file": ("photo.png", b"\x89PNG....", "image/png")}
    )

    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


async def test_unsupported_body_type_is_415(auth_client: httpx.AsyncClient) -> None:
    response = await auth_client.post(
        "/api/documents", content=b"hello", headers={"Content-Type": "text/plain"}
    )

    assert response.status_code == 415


async def test_upload_without_file_or_with_bad_fields_is_422(
    auth_client: httpx.AsyncClient,
) -> None:
    no_file = await auth_client.post(
        "/api/documents",
        data={"title": "x"},
        files={"other": ("a.txt", b"x", "text/plain")},
    )
    bad_field = await auth_client.post(
        "/api/documents",
        data={"visibility": "public"},
        files={"file": ("a.txt", b"x", "text/plain")},
    )
    empty = await auth_client.post(
        "/api/documents", files={"file": ("a.txt", b" \n ", "text/plain")}
    )

    assert no_file.status_code == 422
    assert bad_field.status_code == 422
    assert empty.status_code == 422


async def test_a_pdf_or_html_file_is_parsed_by_the_worker_not_the_request(
    auth_client: httpx.AsyncClient,
    connection: AsyncConnection,
    worker: IngestionWorker,
) -> None:
    pdf = make_pdf(["Solar panels convert sunlight."], title="Solar")
    created = await auth_client.post(
        "/api/documents",
        data={"title": "My solar notes"},
        files={"file": ("solar.pdf", pdf, "application/pdf")},
    )
    again = await auth_client.post(
        "/api/documents",
        data={"title": "My solar notes"},
        files={"file": ("solar.pdf", pdf, "application/pdf")},
    )
    assert created.status_code == 202
    assert again.status_code == 200
    assert again.json()["id"] == created.json()["id"]
    stored = await document_row(connection, created.json()["id"])
    assert stored.status == "pending"
    assert stored.content_hash == hashlib.sha256(b"").hexdigest()  # no text yet

    outcomes = [r.outcome for r in await worker.drain()]

    assert outcomes == ["extracted", "ready"]
    row = (
        await connection.execute(
            text(
                "select title, content, original, metadata, status, attempts "
                "from documents where id = :id"
            ),
            {"id": created.json()["id"]},
        )
    ).one()
    assert (row.title, row.content) == (
        "My solar notes",
        "Solar panels convert sunlight.",
    )
    assert row.original is None  # the file goes once its text is stored
    assert row.metadata["page_count"] == 1
    assert row.metadata["page_spans"] == {
        "content_sha256": hashlib.sha256(row.content.encode()).hexdigest(),
        "spans": [[1, 0, len(row.content)]],
    }
    assert (row.status, row.attempts) == ("ready", 1)


async def test_a_damaged_file_ends_failed_with_the_reason_at_once(
    auth_client: httpx.AsyncClient,
    connection: AsyncConnection,
    worker: IngestionWorker,
) -> None:
    damaged = await auth_client.post(
        "/api/documents", files={"file": ("a.pdf", b"%PDF-broken", "application/pdf")}
    )
    assert damaged.status_code == 202

    outcomes = [r.outcome for r in await worker.drain()]

    assert outcomes == ["failed"]  # no retry: the file will not get better
    detail = (await auth_client.get(f"/api/documents/{damaged.json()['id']}")).json()
    assert detail["status"] == "failed"
    assert detail["error"].startswith("the PDF cannot be read")


async def test_file_over_the_limit_is_413(
    app: FastAPI, auth_client: httpx.AsyncClient
) -> None:
    limit = app.state.settings.max_upload_bytes
    app.state.settings = app.state.settings.model_copy(
        update={"max_upload_bytes": 2048}
    )
    try:
        response = await auth_client.post(
            "/api/documents", files={"file": ("big.txt", b"a" * 4096, "text/plain")}
        )
    finally:
        app.state.settings = app.state.settings.model_copy(
            update={"max_upload_bytes": limit}
        )

    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


async def test_declared_length_over_the_limit_is_413_before_reading(
    auth_client: httpx.AsyncClient,
) -> None:
    response = await auth_client.post(
        "/api/documents",
        content=b"--x--\r\n",
        headers={
            "Content-Type": "multipart/form-data; boundary=x",
            "Content-Length": str(50 * 1024 * 1024),
        },
    )

    assert response.status_code == 413


async def test_routes_need_a_token(client: httpx.AsyncClient) -> None:
    for method, url in [
        ("GET", "/api/documents"),
        ("POST", "/api/documents"),
        ("GET", "/api/documents/1"),
        ("DELETE", "/api/documents/1"),
        ("POST", "/api/search"),
    ]:
        response = await client.request(method, url)
        assert response.status_code == 401, (method, url)


async def test_search_limits_and_room_membership(
    auth_client: httpx.AsyncClient, app: FastAPI, connection: AsyncConnection
) -> None:
    max_k = app.state.settings.max_search_k
    stranger = await create_user(connection)
    their_room = await create_room(connection, stranger)

    too_many = await auth_client.post(
        "/api/search", json={"query": "x", "k": max_k + 1}
    )
    empty = await auth_client.post("/api/search", json={"query": ""})
    zero = await auth_client.post("/api/search", json={"query": "x", "k": 0})
    not_member = await auth_client.post(
        "/api/search", json={"query": "x", "chat_room_id": their_room}
    )
    nothing = await auth_client.post("/api/search", json={"query": "anything"})

    assert too_many.status_code == 422
    assert empty.status_code == 422
    assert zero.status_code == 422
    assert not_member.status_code == 404
    assert nothing.status_code == 200
    assert nothing.json() == {"hits": []}


async def test_search_hits_have_citation_fields(
    auth_client: httpx.AsyncClient, worker: IngestionWorker, connection: AsyncConnection
) -> None:
    shared = await insert_document(
        connection,
        owner_id=None,
        title="Handbook",
        content="# Handbook\n\n## Leave\n\nEmployees get 25 days of paid leave.",
    )
    await worker.drain()

    response = await auth_client.post(
        "/api/search", json={"query": "how many vacation days", "k": 1}
    )

    [hit] = response.json()["hits"]
    assert hit["document_id"] == shared
    assert hit["title"] == "Handbook"
    assert hit["heading_path"] == "Handbook > Leave"
    assert "Employees get 25 days of paid leave." in hit["snippet"]
    assert set(hit) == {
        "chunk_id",
        "document_id",
        "title",
        "heading_path",
        "snippet",
        "content",
        "score",
        "pages",
        "span",
    }
    content = "# Handbook\n\n## Leave\n\nEmployees get 25 days of paid leave."
    span = hit["span"]
    assert content[span["start"] : span["end"]] == hit["content"]
    assert hit["pages"] is None  # not a PDF


async def test_other_users_token_sees_its_own_list(
    app: FastAPI, connection: AsyncConnection, auth_client: httpx.AsyncClient
) -> None:
    await auth_client.post("/api/documents", json={"title": "A", "content": "a"})
    bob = await create_user(connection)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://test",
        headers=auth_headers(mint_token(bob)),
    ) as bob_client:
        listed = await bob_client.get("/api/documents")

    assert listed.json() == {"items": []}
