"""The OpenAPI document states the rules the server enforces, and no others.

Page-size maxima, which fields may be null, the one-of on adding a member, the
accepted upload types and the NUL/surrogate rule: each is read from
``app.openapi()`` and checked against what the server does.
"""

import json
import re
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from src.app import create_app
from src.domain.entity.request import STORABLE_TEXT_PATTERN, unstorable_reason
from src.domain.service.document_parsing import (
    MIME_BY_EXTENSION,
    SUPPORTED_EXTENSIONS,
    SUPPORTED_MEDIA_TYPES,
)
from src.settings import Settings
from tests.security.conftest import ClientFactory

LIST_ROUTES = (
    "/api/documents",
    "/api/chat-rooms",
    "/api/chat-rooms/{room_id}/messages",
)


def limit_parameters(app: FastAPI) -> dict[str, dict[str, Any]]:
    """The schema of the ``limit`` query parameter, by path."""
    return {
        path: parameter["schema"]
        for path, operations in app.openapi()["paths"].items()
        for operation in operations.values()
        for parameter in operation.get("parameters", [])
        if parameter["name"] == "limit" and parameter["in"] == "query"
    }


@pytest.mark.parametrize(("max_page_size", "default"), [(10, 10), (100, 50), (500, 50)])
def test_every_limit_states_the_apps_max_page_size(
    settings: Settings, max_page_size: int, default: int
) -> None:
    app = create_app(settings.model_copy(update={"max_page_size": max_page_size}))

    limits = limit_parameters(app)

    assert set(limits) == set(LIST_ROUTES)
    for schema in limits.values():
        assert schema["minimum"] == 1
        assert schema["maximum"] == max_page_size
        assert schema["default"] == default


async def test_the_server_keeps_to_the_published_limit(
    client_with: ClientFactory,
) -> None:
    async with client_with(max_page_size=10) as client:
        room = (await client.post("/api/chat-rooms", json={"title": "r"})).json()
        paths = [p.replace("{room_id}", str(room["id"])) for p in LIST_ROUTES]
        over = [await client.get(p, params={"limit": 11}) for p in paths]
        at = [await client.get(p, params={"limit": 10}) for p in paths]
        unset = [await client.get(p) for p in paths]

    for response in over:
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "validation_error"
        assert "at most 10" in response.json()["message"]
    for response in (*at, *unset):
        assert response.status_code == 200, response.text


NULLABLE = {
    # Responses: what the code can return as null.
    "ChatResponse": set(),
    "Source": {"pages", "span"},
    "Sender": {"id", "name"},
    "MessageOut": set(),
    "MessagePage": {"next_before"},
    "PersonaSummary": set(),
    "RoomMember": set(),
    "RoomOut": {
        *("virtual_user", "last_message_at", "last_message_preview", "members"),
        "ai_replies",
    },
    "PersonaOut": {"model", "temperature", "max_tokens", "owner_id"},
    "DocumentOut": {
        *("source", "chat_room_id", "owner_id", "error"),
        *("embedding_model", "content_hash", "index_progress"),
    },
    "DocumentList": set(),
    "SearchHit": {"pages", "span"},
    "SearchResponse": set(),
    "MeOut": {"email", "avatar_url"},
    "ProfileOut": {"default_virtual_user_id", "preferred_language", "bio"},
    # Requests: null means something (a new room, the default, "clear it").
    "ChatRequest": {"chat_room_id", "virtual_user_id"},
    "RoomCreate": {"virtual_user_id"},
    "RoomUpdate": {"virtual_user_id", "ai_replies"},
    "MemberAdd": {"user_id", "account_name"},
    "PersonaCreate": {"model", "temperature", "max_tokens"},
    "PersonaUpdate": {"model", "temperature", "max_tokens"},
    "MeUpdate": {
        *("avatar_url", "default_virtual_user_id", "preferred_language", "bio"),
    },
    "SearchRequest": {"k", "chat_room_id"},
}
RESPONSES = (
    *("ChatResponse", "Source", "Sender", "MessageOut", "MessagePage"),
    *("PersonaSummary", "RoomMember", "RoomOut", "PersonaOut", "DocumentOut"),
    *("DocumentList", "SearchHit", "SearchResponse", "MeOut", "ProfileOut"),
)


def nullable(schema: dict[str, Any]) -> set[str]:
    """The properties of an object schema that may be null."""
    return {
        name
        for name, field in schema["properties"].items()
        if {"type": "null"} in field.get("anyOf", [])
    }


@pytest.mark.parametrize("model", sorted(NULLABLE))
def test_only_the_fields_that_may_be_null_are_nullable(
    app: FastAPI, model: str
) -> None:
    schema = app.openapi()["components"]["schemas"][model]

    assert nullable(schema) == NULLABLE[model]


@pytest.mark.parametrize("model", RESPONSES)
def test_every_response_field_is_always_sent(app: FastAPI, model: str) -> None:
    schema = app.openapi()["components"]["schemas"][model]

    assert set(schema["required"]) == set(schema["properties"])


NULL_PROBES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/chat-rooms"): {"title": "t"},
    ("PATCH", "/api/chat-rooms/{room_id}"): {},
    ("POST", "/api/virtual-users"): {"name": "n", "system_prompt": "p"},
    ("PATCH", "/api/virtual-users/{persona_id}"): {},
    ("PATCH", "/api/me"): {},
    ("POST", "/api/search"): {"query": "q"},
    ("POST", "/api/documents"): {"title": "t", "content": "c"},
}
"""A valid body per route (ids nobody has: a 404 is an accepted body)."""


def json_body(app: FastAPI, method: str, path: str) -> dict[str, Any]:
    """The JSON request body schema of an operation, resolved."""
    document = app.openapi()
    operation = document["paths"][path][method.lower()]
    schema = dict(operation["requestBody"]["content"]["application/json"]["schema"])
    ref = schema.get("$ref")
    return (
        dict(document["components"]["schemas"][ref.split("/")[-1]]) if ref else schema
    )


def null_probes(app: FastAPI) -> list[tuple[str, str, str, bool]]:
    """(method, path, field, whether the schema lets it be null), every field."""
    probes: list[tuple[str, str, str, bool]] = []
    for method, path in NULL_PROBES:
        schema = json_body(app, method, path)
        probes.extend(
            (method, path, name, name in nullable(schema))
            for name in schema["properties"]
        )
    return probes


async def test_a_null_is_refused_exactly_where_the_schema_forbids_it(
    app: FastAPI, auth_client: httpx.AsyncClient
) -> None:
    probes = null_probes(app)
    refused = {}
    for method, path, name, _ in probes:
        body = {**NULL_PROBES[method, path], name: None}
        url = path.replace("{room_id}", "1").replace("{persona_id}", "1")
        response = await auth_client.request(method, url, json=body)
        assert response.status_code < 500, response.text
        refused[method, path, name] = response.status_code == 422

    assert len(probes) >= 25
    assert refused == {
        (method, path, name): not may_be_null
        for method, path, name, may_be_null in probes
    }


def test_adding_a_member_is_one_of_user_id_or_account_name(app: FastAPI) -> None:
    schema = app.openapi()["components"]["schemas"]["MemberAdd"]

    branches = schema["oneOf"]

    assert [branch["required"] for branch in branches] == [
        ["user_id"],
        ["account_name"],
    ]
    assert branches[0]["properties"]["user_id"] == {"type": "string", "format": "uuid"}
    assert branches[1]["properties"]["account_name"]["type"] == "string"
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize(
    ("body", "accepted"),
    [
        ({"user_id": str(uuid.uuid4())}, True),
        ({"account_name": "nobody_here"}, True),
        ({"user_id": str(uuid.uuid4()), "account_name": None}, True),
        ({"user_id": None, "account_name": "nobody_here"}, True),
        ({"user_id": str(uuid.uuid4()), "account_name": "nobody_here"}, False),
        ({}, False),
        ({"user_id": None, "account_name": None}, False),
    ],
)
async def test_the_server_takes_exactly_one_of_them(
    auth_client: httpx.AsyncClient, body: dict[str, Any], accepted: bool
) -> None:
    room = (await auth_client.post("/api/chat-rooms", json={"title": "r"})).json()

    response = await auth_client.post(
        f"/api/chat-rooms/{room['id']}/members", json=body
    )

    # An accepted body looks for a user nobody is: 404, not a validation error.
    assert response.status_code == (404 if accepted else 422), response.text


def upload_schema(app: FastAPI) -> dict[str, Any]:
    """The multipart media type object of ``POST /api/documents``."""
    operation = app.openapi()["paths"]["/api/documents"]["post"]
    return dict(operation["requestBody"]["content"]["multipart/form-data"])


def test_the_schema_lists_the_accepted_upload_types(app: FastAPI) -> None:
    upload = upload_schema(app)
    described = (
        upload["schema"]["properties"]["file"]["description"]
        + app.openapi()["paths"]["/api/documents"]["post"]["description"]
    )

    listed = upload["encoding"]["file"]["contentType"].split(", ")

    assert listed == list(SUPPORTED_MEDIA_TYPES)
    assert set(MIME_BY_EXTENSION.values()) <= set(listed)
    for extension in SUPPORTED_EXTENSIONS:
        assert f"*{extension}" in described
    for media_type in SUPPORTED_MEDIA_TYPES:
        assert media_type in described


CONTENT_BY_TYPE = {
    "text/plain": b"plain words",
    "text/markdown": b"# Notes\n\nmarkdown words",
    "text/x-markdown": b"# Notes\n\nother markdown words",
    "application/pdf": b"%PDF-1.4\n%%EOF\n",
    "text/html": b"<p>html words</p>",
    "application/xhtml+xml": b"<p>xhtml words</p>",
}


@pytest.mark.parametrize("media_type", SUPPORTED_MEDIA_TYPES)
async def test_every_listed_type_is_accepted_without_an_extension(
    auth_client: httpx.AsyncClient, media_type: str
) -> None:
    response = await auth_client.post(
        "/api/documents",
        files={"file": ("notes", CONTENT_BY_TYPE[media_type], media_type)},
    )

    assert response.status_code == 202, response.text


@pytest.mark.parametrize("media_type", ["image/png", "application/octet-stream"])
async def test_a_type_not_listed_is_415(
    auth_client: httpx.AsyncClient, media_type: str
) -> None:
    response = await auth_client.post(
        "/api/documents", files={"file": ("notes", b"bytes", media_type)}
    )

    assert response.status_code == 415, response.text


@pytest.mark.parametrize(
    "text",
    [
        *("", "plain", "emoji 😀", "é 中文 \u202e", "\ufffe\uffff", "tab\tnew\nline"),
        *("a\x00b", "\x00", "\ud800", "lone \udfff", "\ud83d", "pair? \ud83d\ude00"),
    ],
)
def test_the_published_pattern_is_the_servers_text_rule(text: str) -> None:
    allowed = re.fullmatch(STORABLE_TEXT_PATTERN, text) is not None

    assert allowed == (unstorable_reason(text) is None)


def free_text_fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The string schemas of a body's fields that no format, enum or pattern fix."""
    found = []
    for field in schema["properties"].values():
        for option in field.get("anyOf", [field]):
            if option.get("type") == "string" and "format" not in option:
                found.append(option)
    return found


def request_bodies(app: FastAPI) -> list[dict[str, Any]]:
    """Every request body schema of the API (JSON and form), resolved."""
    document = app.openapi()
    schemas = document["components"]["schemas"]
    bodies = []
    for operations in document["paths"].values():
        for operation in operations.values():
            for media in operation.get("requestBody", {}).get("content", {}).values():
                ref = media["schema"].get("$ref", "")
                bodies.append(schemas[ref.split("/")[-1]] if ref else media["schema"])
    return bodies


def test_every_free_text_field_publishes_the_rule(app: FastAPI) -> None:
    fields = [f for body in request_bodies(app) for f in free_text_fields(body)]
    unconstrained = [f for f in fields if "enum" not in f and "pattern" not in f]
    published = [f for f in fields if f.get("pattern") == STORABLE_TEXT_PATTERN]
    settings = app.openapi()["components"]["schemas"]["MeUpdate"]["properties"][
        "settings"
    ]

    assert unconstrained == []
    assert len(published) >= 15
    assert settings["propertyNames"] == {"pattern": STORABLE_TEXT_PATTERN}
    assert "NUL" in settings["description"]


@pytest.mark.parametrize("text", ["a\x00b", "lone \ud800 surrogate"])
async def test_text_the_pattern_excludes_is_422(
    auth_client: httpx.AsyncClient, text: str
) -> None:
    # Escaped (``ensure_ascii``): a lone surrogate cannot be sent as UTF-8.
    response = await auth_client.post(
        "/api/chat-rooms",
        content=json.dumps({"title": text}),
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 422, response.text
    assert "NUL" in response.json()["message"]
