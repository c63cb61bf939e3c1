"""A Postgres that is starting or recovering is 503 with Retry-After, not 500.

The database is a fake that answers every connection as a starting server does
(SQLSTATE 57P03, asyncpg's ``CannotConnectNowError``).
"""

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from src.app import create_app
from src.infra.ai_providers import AIProviders
from src.infra.db_client import Database, create_engine
from src.runtime import runtime
from src.settings import Settings
from tests.factories import auth_headers, mint_token
from tests.support.starting_postgres import StartingPostgres


@pytest.fixture
async def starting_client(
    settings: Settings, ai_providers: AIProviders
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app on a database that is starting up.

    Its user is already known (as after an earlier request), so the chat turn
    is the request's first use of the database.
    """
    async with StartingPostgres() as postgres:
        changed = settings.model_copy(
            update={"database_url": postgres.url, "worker_enabled": False}
        )
        database = Database(engine=create_engine(postgres.url, changed))
        app = create_app(changed)
        user_id = uuid.uuid4()
        try:
            async with runtime(app, changed, database, ai=ai_providers):
                app.state.current_user_gateway.known_users.add(user_id)
                transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
                async with httpx.AsyncClient(
                    transport=transport,
                    base_url="http://test",
                    headers=auth_headers(mint_token(user_id)),
                ) as client:
                    yield client
        finally:
            await database.dispose()


async def test_every_route_is_503_with_retry_after_while_postgres_starts(
    starting_client: httpx.AsyncClient,
) -> None:
    responses = [
        await starting_client.get("/api/documents"),
        await starting_client.post("/api/chat-rooms", json={"title": "r"}),
        await starting_client.post("/api/chat", json={"message": "hi"}),
        await starting_client.post(
            "/api/chat", json={"message": "hi", "chat_room_id": 1}
        ),
        await starting_client.post(
            "/api/chat/stream", json={"message": "hi", "chat_room_id": 1}
        ),
        await starting_client.post("/api/search", json={"query": "q"}),
    ]
    ready = await starting_client.get("/health/ready")

    for response in responses:
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "database_unavailable"
        assert response.headers["retry-after"] == "5"
    assert ready.status_code == 503
