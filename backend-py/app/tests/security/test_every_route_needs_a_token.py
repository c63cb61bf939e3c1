"""Every route of the API refuses a request without a valid token (401).

The routes are read from the app itself, so a route added later is covered
without touching this file; only the routes listed in ``PUBLIC`` may answer
without a token, and that list is checked too.
"""

import re
import uuid

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from src.app import app as served_app
from tests.factories import mint_token

PUBLIC = {("GET", "/health"), ("GET", "/health/ready")}
"""The API routes that answer without a token (the OpenAPI docs are public too)."""

UUID_PARAMETERS = {"user_id"}


def api_routes() -> list[tuple[str, str]]:
    """(method, path template) of every route of the app, docs excluded."""
    return sorted(
        (method, str(context.path))
        for context in iter_route_contexts(served_app.routes)
        if isinstance(context.route, APIRoute)
        for method in context.methods or ()
    )


def concrete(path: str) -> str:
    """The template with its parameters filled (ids of nothing that exists)."""

    def value(match: re.Match[str]) -> str:
        return str(uuid.uuid4()) if match.group(1) in UUID_PARAMETERS else "1"

    return re.sub(r"\{(\w+)\}", value, path)


PROTECTED = [route for route in api_routes() if route not in PUBLIC]

BAD_TOKENS = {
    "no header": None,
    "not a jwt": "Bearer not-a-jwt",
    "wrong scheme": "Basic dXNlcjpwYXNz",
    "expired": f"Bearer {mint_token(uuid.uuid4(), expires_in=-3600)}",
    "wrong secret": f"Bearer {mint_token(uuid.uuid4(), secret='x' * 40)}",
    "alg none": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
}


def test_the_routes_are_those_of_the_openapi_document() -> None:
    documented = {
        (method.upper(), path)
        for path, operations in served_app.openapi()["paths"].items()
        for method in operations
    }
    assert set(api_routes()) == documented
    assert documented >= PUBLIC
    assert len(PROTECTED) >= 20
    assert all(path.startswith("/api/") for _, path in PROTECTED)


@pytest.mark.parametrize(("method", "path"), PROTECTED, ids=" ".join)
async def test_a_route_without_a_valid_token_is_401(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    for reason, authorization in BAD_TOKENS.items():
        headers = {"Authorization": authorization} if authorization else {}
        response = await client.request(method, concrete(path), headers=headers)
        assert response.status_code == 401, (reason, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")
        body = response.json()
        assert body["error"] == "invalid_token", reason
        assert set(body) == {"error", "message", "request_id"}


async def test_the_public_routes_and_docs_answer_without_a_token(
    client: httpx.AsyncClient,
) -> None:
    for method, path in sorted(PUBLIC):
        assert (await client.request(method, path)).status_code == 200, path
    for path in ("/openapi.json", "/docs"):
        assert (await client.get(path)).status_code == 200, path
