import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from src.infra.db_client import Database, create_engine
from src.settings import Settings


async def test_health_is_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert len(response.headers["x-request-id"]) == 32


async def test_a_sane_client_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"


async def test_an_unsafe_client_request_id_is_replaced(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "a b\tc" * 50})
    assert response.headers["x-request-id"] != "a b\tc" * 50


async def test_ready_checks_the_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_ready_is_503_with_a_reason_when_the_database_is_down(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    unreachable = create_engine(
        "postgresql://postgres@/postgres?host=/nonexistent", settings
    )
    app.state.database = Database(engine=unreachable)
    response = await client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["error"] == "database_unavailable"
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["reason"].startswith("database:")
    await unreachable.dispose()


async def test_unknown_route_uses_the_error_format(client: httpx.AsyncClient) -> None:
    response = await client.get("/nope")
    assert response.status_code == 404
    body = response.json()
    assert body["error"] == "not_found"
    assert body["message"]
    assert body["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
async def test_api_documentation_is_served(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200


async def test_an_unexpected_error_is_a_500_carrying_the_request_id(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    async def boom() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/boom", boom)
    response = await client.get("/boom")
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == "internal_error"
    assert body["request_id"] == response.headers["x-request-id"]
    assert "secret" not in response.text


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (TimeoutError(), 503),  # the driver's command timeout
        (ConnectionRefusedError(), 503),
        (asyncpg.CannotConnectNowError("the database system is starting up"), 503),
        (asyncpg.TooManyConnectionsError("too many clients"), 503),
        (asyncpg.UniqueViolationError("duplicate key"), 500),
    ],
)
async def test_driver_errors_raised_while_connecting_are_503_when_transient(
    app: FastAPI, client: httpx.AsyncClient, error: Exception, status: int
) -> None:
    async def connect() -> None:
        raise error

    app.add_api_route("/connect", connect)
    response = await client.get("/connect")
    assert response.status_code == status
    assert response.json()["error"] in {"database_unavailable", "internal_error"}
