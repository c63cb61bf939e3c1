"""Garbage in: oversized, mistyped, undecodable, deeply nested or absurd bodies.

Each is a clear 4xx in the API's error format, and nothing is stored.
"""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from src.app import app as served_app
from src.domain.entity.request import MAX_NESTING
from src.settings import Settings
from tests.security.conftest import ClientFactory, row_counts

ERROR_KEYS = {"error", "message", "request_id"}


def json_body_routes() -> list[tuple[str, str]]:
    """(method, path) of every operation that reads a JSON body."""
    return sorted(
        (method.upper(), path)
        for path, operations in served_app.openapi()["paths"].items()
        for method, operation in operations.items()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    )


def concrete(path: str) -> str:
    """A path with its parameters set to an id nobody has."""
    return path.replace("{room_id}", "1").replace("{persona_id}", "1")


JSON_ROUTES = json_body_routes()


def assert_error(response: httpx.Response, status: int | tuple[int, ...]) -> None:
    """The response is an error of ``status`` in the API's format."""
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, response.text
    assert set(response.json()) >= ERROR_KEYS, response.text
    assert response.headers["x-request-id"] == response.json()["request_id"]


def test_the_json_routes_are_found() -> None:
    assert ("POST", "/api/chat") in JSON_ROUTES
    assert ("PATCH", "/api/me") in JSON_ROUTES
    assert ("POST", "/api/documents") in JSON_ROUTES
    assert len(JSON_ROUTES) >= 10


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
        "multipart/form-data; boundary=x",
        None,
    ],
)
async def test_a_json_route_refuses_other_media_types_with_415(
    auth_client: httpx.AsyncClient,
    connection: AsyncConnection,
    content_type: str | None,
) -> None:
    before = await row_counts(connection)
    headers = {"Content-Type": content_type} if content_type else {}
    for method, path in JSON_ROUTES:
        if path == "/api/documents" and content_type and "multipart" in content_type:
            continue  # the upload route reads multipart (a broken one here)
        response = await auth_client.request(
            method, concrete(path), content=b'{"title": "t"}', headers=headers
        )
        assert_error(response, 415)
        assert response.json()["error"] == "unsupported_media_type"
        assert "application/json" in response.json()["message"]
    assert await row_counts(connection) == before


async def test_json_with_a_charset_or_a_json_suffix_is_read(
    auth_client: httpx.AsyncClient,
) -> None:
    for content_type in ("application/json; charset=utf-8", "application/merge+json"):
        response = await auth_client.post(
            "/api/chat-rooms",
            content=b'{"title": "fine"}',
            headers={"Content-Type": content_type},
        )
        assert response.status_code == 201, (content_type, response.text)


async def oversized_stream(size: int) -> AsyncIterator[bytes]:
    """A JSON body of about ``size`` bytes, sent chunked (no Content-Length)."""
    yield b'{"message": "'
    for _ in range(size // 65536 + 1):
        yield b"a" * 65536
    yield b'"}'


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/chat"), ("PATCH", "/api/me"), ("POST", "/api/documents")],
)
async def test_an_oversized_json_body_is_413_declared_or_streamed(
    auth_client: httpx.AsyncClient,
    connection: AsyncConnection,
    settings: Settings,
    method: str,
    path: str,
) -> None:
    limit = settings.max_request_bytes
    before = await row_counts(connection)
    body = b'{"bio": "' + b"a" * limit + b'"}'
    headers = {"Content-Type": "application/json"}

    declared = await auth_client.request(method, path, content=body, headers=headers)
    streamed = await auth_client.request(
        method, path, content=oversized_stream(limit), headers=headers
    )

    for response in (declared, streamed):
        assert_error(response, 413)
        assert response.json()["error"] == "payload_too_large"
        assert str(limit) in response.json()["message"]
    assert "transfer-encoding" in streamed.request.headers
    assert await row_counts(connection) == before


async def test_a_declared_oversized_body_is_413_on_any_route(
    auth_client: httpx.AsyncClient, settings: Settings
) -> None:
    limit = settings.max_request_bytes
    for method, path in [("GET", "/api/me"), ("DELETE", "/api/chat-rooms/1")]:
        response = await auth_client.request(
            method,
            path,
            content=b"{}",
            headers={"Content-Length": str(limit + 1)},
        )
        assert_error(response, 413)


async def streamed_upload(size: int) -> AsyncIterator[bytes]:
    yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
    yield b"Content-Type: text/plain\r\n\r\n"
    for _ in range(size // 65536 + 1):
        yield b"a" * 65536
    yield b"\r\n--b--\r\n"


async def test_an_upload_over_the_limit_is_413_declared_or_streamed(
    client_with: ClientFactory, connection: AsyncConnection
) -> None:
    before = await row_counts(connection)
    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    async with client_with(max_upload_bytes=4096) as client:
        file_too_big = await client.post(
            "/api/documents", files={"file": ("a.txt", b"a" * 5000, "text/plain")}
        )
        body_too_big = await client.post(
            "/api/documents", content=streamed_upload(200_000), headers=headers
        )
        declared = await client.post(
            "/api/documents",
            content=b"--b--\r\n",
            headers={**headers, "Content-Length": str(10**9)},
        )

    for response in (file_too_big, body_too_big, declared):
        assert_error(response, 413)
        assert response.json()["message"] == "files are limited to 4096 bytes"
    assert await row_counts(connection) == before


async def test_an_upload_within_the_limit_is_accepted(
    client_with: ClientFactory,
) -> None:
    async with client_with(max_upload_bytes=4096) as client:
        response = await client.post(
            "/api/documents", files={"file": ("a.txt", b"a" * 4000, "text/plain")}
        )

    assert response.status_code == 202, response.text


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/chat", b'{"message": "caf\xe9 \xff"}'),
        ("POST", "/api/chat-rooms", b'{"title": "\xc3\x28"}'),
        (
            "POST",
            "/api/virtual-users",
            b'{"name": "a", "system_prompt": "\xed\xa0\x80"}',
        ),
        ("POST", "/api/documents", b'{"title": "t", "content": "\xf8\x88\x80\x80"}'),
        ("PATCH", "/api/me", b'{"bio": "\x80"}'),
        ("POST", "/api/search", b'{"query": "\xfe"}'),
    ],
)
async def test_invalid_utf8_is_a_clear_4xx(
    auth_client: httpx.AsyncClient,
    connection: AsyncConnection,
    method: str,
    path: str,
    body: bytes,
) -> None:
    before = await row_counts(connection)

    response = await auth_client.request(
        method, path, content=body, headers={"Content-Type": "application/json"}
    )

    assert_error(response, (400, 422))
    # JSON decodes UTF-8 surrogate bytes too: those are refused as unstorable.
    message = response.json()["message"]
    assert any(word in message for word in ("UTF-8", "unicode", "surrogate"))
    assert await row_counts(connection) == before


@pytest.mark.parametrize(
    "body",
    [b'{"message": "hi"', b"{'message': 'hi'}", b'{"message": "hi"}}', b"\x00", b"[]"],
)
async def test_malformed_json_is_a_clear_4xx(
    auth_client: httpx.AsyncClient, connection: AsyncConnection, body: bytes
) -> None:
    before = await row_counts(connection)

    response = await auth_client.post(
        "/api/chat", content=body, headers={"Content-Type": "application/json"}
    )

    assert_error(response, (400, 422))
    assert await row_counts(connection) == before


def nested(depth: int) -> bytes:
    return b'{"settings": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"


async def test_deeply_nested_json_is_refused_and_not_stored(
    auth_client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    before = await row_counts(connection)
    headers = {"Content-Type": "application/json"}

    too_deep_to_parse = await auth_client.patch(
        "/api/me", content=nested(100_000), headers=headers
    )
    too_deep_to_keep = await auth_client.patch(
        "/api/me", content=nested(MAX_NESTING + 1), headers=headers
    )
    deep_enough = await auth_client.patch(
        "/api/me", content=nested(MAX_NESTING - 2), headers=headers
    )

    assert_error(too_deep_to_parse, 400)
    assert too_deep_to_parse.json()["message"] == "The JSON body nests too deeply."
    assert_error(too_deep_to_keep, 422)
    assert "nest" in too_deep_to_keep.json()["message"]
    assert await row_counts(connection) != before  # only the last one was kept
    assert deep_enough.status_code == 200, deep_enough.text


HUGE = 2**70


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"/api/chat-rooms/{HUGE}", None),
        ("PATCH", f"/api/chat-rooms/{HUGE}", {"title": "x"}),
        ("GET", f"/api/chat-rooms/{HUGE}/messages", None),
        ("GET", f"/api/chat-rooms/1/messages?before={HUGE}", None),
        ("DELETE", f"/api/chat-rooms/{-HUGE}", None),
        ("GET", f"/api/documents/{HUGE}", None),
        ("GET", f"/api/documents?offset={HUGE}", None),
        ("GET", f"/api/documents?limit={HUGE}", None),
        ("PATCH", f"/api/virtual-users/{HUGE}", {"name": "x"}),
        ("POST", "/api/chat", {"message": "hi", "chat_room_id": HUGE}),
        ("POST", "/api/chat", {"message": "hi", "virtual_user_id": HUGE}),
        ("POST", "/api/chat/stream", {"message": "hi", "chat_room_id": HUGE}),
        ("POST", "/api/chat-rooms", {"title": "x", "virtual_user_id": HUGE}),
        ("POST", "/api/search", {"query": "x", "chat_room_id": HUGE}),
        ("POST", "/api/search", {"query": "x", "k": HUGE}),
        (
            "POST",
            "/api/documents",
            {"title": "t", "content": "c", "chat_room_id": HUGE},
        ),
        ("PATCH", "/api/me", {"default_virtual_user_id": HUGE}),
        (
            "POST",
            "/api/virtual-users",
            {"name": "a", "system_prompt": "b", "temperature": 1e300},
        ),
    ],
)
async def test_huge_numbers_are_422_not_500(
    auth_client: httpx.AsyncClient,
    connection: AsyncConnection,
    method: str,
    path: str,
    body: Any,
) -> None:
    before = await row_counts(connection)

    response = await auth_client.request(method, path, json=body)

    assert_error(response, 422)
    assert await row_counts(connection) == before


@pytest.mark.parametrize(
    "body",
    [
        b'{"settings": {"a": NaN}}',
        b'{"settings": {"a": -Infinity}}',
        b'{"settings": {"a": 1e400}}',
        b'{"settings": {"a": ' + b"9" * 5000 + b"}}",
    ],
    ids=["nan", "infinity", "overflow", "5000 digits"],
)
async def test_numbers_json_cannot_hold_are_refused(
    auth_client: httpx.AsyncClient, connection: AsyncConnection, body: bytes
) -> None:
    before = await row_counts(connection)

    response = await auth_client.patch(
        "/api/me", content=body, headers={"Content-Type": "application/json"}
    )

    assert_error(response, (400, 422))
    assert await row_counts(connection) == before


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/chat", b'{"message": "a\\u0000b"}'),
        ("/api/chat", b'{"message": "lone \\ud800 high"}'),
        ("/api/chat-rooms", b'{"title": "lone \\udfff low"}'),
        ("/api/virtual-users", b'{"name": "n", "system_prompt": "\\u0000"}'),
        ("/api/documents", b'{"title": "t", "content": "x\\u0000y"}'),
        ("/api/search", b'{"query": "\\udc00"}'),
    ],
)
async def test_text_postgres_cannot_store_is_422(
    auth_client: httpx.AsyncClient,
    connection: AsyncConnection,
    path: str,
    body: bytes,
) -> None:
    before = await row_counts(connection)

    response = await auth_client.post(
        path, content=body, headers={"Content-Type": "application/json"}
    )

    assert_error(response, 422)
    assert await row_counts(connection) == before


async def test_unstorable_settings_keys_are_422_and_a_valid_pair_is_kept(
    auth_client: httpx.AsyncClient,
) -> None:
    headers = {"Content-Type": "application/json"}
    refused = await auth_client.patch(
        "/api/me", content=b'{"settings": {"\\u0000": 1}}', headers=headers
    )
    kept = await auth_client.patch(
        "/api/me", content=b'{"settings": {"\\ud83d\\ude00": 1}}', headers=headers
    )

    assert_error(refused, 422)
    assert kept.status_code == 200, kept.text
    assert kept.json()["profile"]["settings"] == {"\U0001f600": 1}


@pytest.mark.parametrize("length", [b"12abc", b"-1", b"+17", b"\xb2", b""])
async def test_an_invalid_content_length_is_400(
    auth_client: httpx.AsyncClient, length: bytes
) -> None:
    response = await auth_client.post(
        "/api/chat",
        content=b'{"message": "hi"}',
        headers=[(b"Content-Type", b"application/json"), (b"Content-Length", length)],
    )

    assert_error(response, 400)
    assert "Content-Length" in response.json()["message"]
