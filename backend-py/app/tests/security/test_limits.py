"""Every limit of the settings is a clear 4xx that names it (body and upload: 413
in test_bad_requests; rates: test_rate_limits)."""

import asyncio
from collections.abc import AsyncIterator

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from src.domain.entity.chat import MAX_MESSAGE_CHARS
from tests.security.conftest import ClientFactory, row_counts


async def test_a_message_over_max_message_chars_is_422_and_not_stored(
    client_with: ClientFactory, connection: AsyncConnection
) -> None:
    before = await row_counts(connection)
    async with client_with(max_message_chars=20) as client:
        over = await client.post("/api/chat", json={"message": "x" * 21})
        streamed = await client.post("/api/chat/stream", json={"message": "x" * 21})
        query = await client.post("/api/search", json={"query": "x" * 21})
        at_limit = await client.post("/api/chat", json={"message": "x" * 20})

    for response in (over, streamed, query):
        assert response.status_code == 422, response.text
        assert "20" in response.json()["message"]
    assert at_limit.status_code == 200, at_limit.text
    rooms, messages, *_ = await row_counts(connection)
    assert (rooms, messages) == (before[0] + 1, before[1] + 2)


async def test_a_message_over_the_schemas_bound_is_422(
    auth_client: httpx.AsyncClient,
) -> None:
    response = await auth_client.post(
        "/api/chat", json={"message": "x" * (MAX_MESSAGE_CHARS + 1)}
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "message"]


async def test_a_body_over_max_request_bytes_is_413_naming_the_limit(
    client_with: ClientFactory,
) -> None:
    async with client_with(max_request_bytes=2048) as client:
        over = await client.post("/api/chat-rooms", json={"title": "t" * 3000})
        under = await client.post("/api/chat-rooms", json={"title": "t" * 100})

    assert over.status_code == 413
    assert over.json()["message"] == "request bodies are limited to 2048 bytes"
    assert under.status_code == 201


async def test_a_page_over_max_page_size_is_422(
    client_with: ClientFactory,
) -> None:
    async with client_with(max_page_size=10) as client:
        room = (await client.post("/api/chat-rooms", json={"title": "r"})).json()
        documents_over = await client.get("/api/documents", params={"limit": 11})
        documents_at = await client.get("/api/documents", params={"limit": 10})
        rooms_over = await client.get("/api/chat-rooms", params={"limit": 11})
        rooms_at = await client.get("/api/chat-rooms", params={"limit": 10})
        history_over = await client.get(
            f"/api/chat-rooms/{room['id']}/messages", params={"limit": 11}
        )
        zero = await client.get("/api/documents", params={"limit": 0})

    for response in (documents_over, rooms_over, history_over):
        assert response.status_code == 422, response.text
        assert response.json()["message"] == "limit: at most 10 allowed"
    assert documents_at.status_code == 200
    assert rooms_at.status_code == 200
    assert zero.status_code == 422
    assert zero.json()["detail"][0]["loc"] == ["query", "limit"]


async def test_rooms_past_max_rooms_per_user_are_422(
    client_with: ClientFactory, connection: AsyncConnection
) -> None:
    async with client_with(max_rooms_per_user=2) as client:
        for title in ("one", "two"):
            created = await client.post("/api/chat-rooms", json={"title": title})
            assert created.status_code == 201
        before = await row_counts(connection)
        third = await client.post("/api/chat-rooms", json={"title": "three"})
        by_chat = await client.post("/api/chat", json={"message": "new room please"})

    for response in (third, by_chat):
        assert response.status_code == 422, response.text
        assert response.json()["message"] == "You have reached the limit of 2 rooms"
    assert await row_counts(connection) == before


async def test_search_k_over_max_search_k_is_422(
    client_with: ClientFactory,
) -> None:
    async with client_with(max_search_k=5) as client:
        over = await client.post("/api/search", json={"query": "x", "k": 6})
        at_limit = await client.post("/api/search", json={"query": "x", "k": 5})
        zero = await client.post("/api/search", json={"query": "x", "k": 0})

    assert over.status_code == 422
    assert over.json()["message"] == "k must be at most 5"
    assert at_limit.status_code == 200
    assert zero.status_code == 422


async def test_headers_over_max_header_bytes_are_431(
    client_with: ClientFactory,
) -> None:
    async with client_with(max_header_bytes=8192) as client:
        over = await client.get("/api/documents", headers={"X-Pad": "p" * 8192})
        under = await client.get("/api/documents", headers={"X-Pad": "p" * 4096})

    assert over.status_code == 431
    assert over.json()["error"] == "request_header_fields_too_large"
    assert over.json()["message"] == "request headers are limited to 8192 bytes"
    assert under.status_code == 200


async def test_a_body_that_stops_arriving_is_408_before_the_route_runs(
    client_with: ClientFactory, connection: AsyncConnection
) -> None:
    never = asyncio.Event()

    async def trickle() -> AsyncIterator[bytes]:
        yield b'{"title": "'
        await never.wait()

    before = await row_counts(connection)
    async with client_with(body_read_timeout_s=0.2) as client:
        stalled = await client.post(
            "/api/chat-rooms",
            content=trickle(),
            headers={"Content-Type": "application/json"},
        )
        chunked = await client.post(
            "/api/chat-rooms",
            content=_chunks(b'{"title": ', b'"in two parts"}'),
            headers={"Content-Type": "application/json"},
        )

    assert stalled.status_code == 408
    assert stalled.json()["error"] == "request_timeout"
    assert chunked.status_code == 201, chunked.text
    assert chunked.json()["title"] == "in two parts"
    assert (await row_counts(connection))[0] == before[0] + 1


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
