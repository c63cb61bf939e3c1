"""Property-based fuzzing of the whole HTTP API from its own OpenAPI schema.

Schemathesis generates requests for every operation the app publishes (valid
ones, and invalid ones that break the schema); each is sent in process to the
ASGI app with a real user's bearer token, on the test's rolled-back
transaction. Every response must be no 5xx, have a documented status code and
content type, and match its documented schema.

Schemathesis' own ASGI client runs the app on another thread and event loop,
where the test's database connection cannot follow; so the cases are drawn from
its Hypothesis strategies here, sent with ``httpx`` on the test's loop, and
judged by its checks (``Case.validate_response``).

The examples of one operation share one transaction: what one request creates,
the next may see (a room created, then renamed); nothing outlives the test.
A third of the examples aim their path ids at the user's own room, persona and
document, so the happy paths are fuzzed, not only the 404s.

``FUZZ_MAX_EXAMPLES`` raises the number of examples per operation for a longer
hunt (``FUZZ_MAX_EXAMPLES=200 pytest tests/fuzz``).
"""

import os
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from src.app import app as served_app
from tests.fuzz.conftest import OwnObjects

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "20"))
"""Examples per operation; with ~23 operations the run takes about 20 s."""

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

SCHEMA = schemathesis.openapi.from_dict(served_app.openapi())


def all_operations() -> list[APIOperation[Any, Any, Any, Any]]:
    """Every operation of the schema (an unreadable one fails collection)."""
    operations = []
    for result in SCHEMA.get_all_operations():
        if not isinstance(result, Ok):
            raise result.err()
        operations.append(result.ok())
    return operations


ENDLESS = {"GET /api/chat-rooms/{room_id}/events"}
"""Streams that never end on their own (an in-process client waits for the
end of a body): tests/e2e/test_room_events.py covers them on a real server."""

OPERATIONS = [op for op in all_operations() if op.label not in ENDLESS]


def cases(
    operation: APIOperation[Any, Any, Any, Any], own: OwnObjects
) -> st.SearchStrategy[Case[Any]]:
    """Valid and invalid requests, some of them about the user's own objects."""
    strategies = [
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    ]
    known = own.path_parameters([p.name for p in operation.path_parameters])
    if known:
        strategies.append(
            operation.as_strategy(GenerationMode.POSITIVE, path_parameters=known)
        )
    return st.one_of(strategies)


async def send(client: httpx.AsyncClient, case: Case[Any]) -> httpx.Response:
    """Send a case as Schemathesis would, with httpx on the test's loop."""
    kwargs = case.as_transport_kwargs(base_url=str(client.base_url))
    prepared = requests.Request(
        method=kwargs["method"],
        url=kwargs["url"],
        headers=kwargs.get("headers"),
        params=kwargs.get("params"),
        cookies=kwargs.get("cookies"),
        json=kwargs.get("json"),
        data=kwargs.get("data"),
        files=kwargs.get("files"),
    ).prepare()
    # The client sends the user's token; a generated one must not replace it.
    headers = {
        name: value if isinstance(value, str) else value.decode("latin-1")
        for name, value in prepared.headers.items()
        if name.lower() != "authorization"
    }
    body = prepared.body
    assert body is None or isinstance(body, str | bytes)  # never a stream here
    return await client.request(
        str(prepared.method),
        str(prepared.url),
        headers=headers,
        content=body.encode() if isinstance(body, str) else body,
    )


def test_the_schema_has_every_operation() -> None:
    labels = {operation.label for operation in OPERATIONS}

    assert len(labels) >= 20
    assert {
        "POST /api/chat",
        "POST /api/chat/stream",
        "POST /api/documents",
        "PATCH /api/me",
        "GET /api/chat-rooms/{room_id}/messages",
    } <= labels


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.label)
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    # The app and its transaction are per test, shared by its examples on
    # purpose (see the module); the generated bodies may be large and slow.
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
async def test_every_operation_answers_within_its_schema(
    operation: APIOperation[Any, Any, Any, Any],
    fuzz_client: httpx.AsyncClient,
    own_objects: OwnObjects,
    data: st.DataObject,
) -> None:
    case = data.draw(cases(operation, own_objects))

    response = await send(fuzz_client, case)

    case.validate_response(response, checks=CHECKS)
