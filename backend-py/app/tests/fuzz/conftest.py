"""The fuzzed app: a real user's client, and objects of theirs to aim at."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from src.app import create_app
from src.infra.ai_providers import AIProviders
from src.infra.db_client import Database
from src.runtime import runtime
from tests.conftest import make_settings
from tests.factories import auth_headers

GENEROUS_RATE_LIMIT = 1_000_000
"""Per minute: fuzzing one user must not run into the (separately tested) limits."""


@pytest.fixture
async def fuzz_client(
    database_url: str,
    database: Database,
    ai_providers: AIProviders,
    user_token: str,
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app, on the test's transaction, sending the user's token."""
    settings = make_settings(
        database_url,
        rate_limit_chat_per_minute=GENEROUS_RATE_LIMIT,
        rate_limit_ingest_per_minute=GENEROUS_RATE_LIMIT,
    )
    app = create_app(settings)
    async with runtime(app, settings, database, ai=ai_providers):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://test",
            headers=auth_headers(user_token),
            timeout=30,
        ) as client:
            yield client


@dataclass(frozen=True)
class OwnObjects:
    """Ids of things the fuzzed user owns, by path parameter name."""

    ids: dict[str, object]

    def path_parameters(self, names: list[str]) -> dict[str, object]:
        """Values for ``names`` when all are known, else none."""
        if not names or any(name not in self.ids for name in names):
            return {}
        return {name: self.ids[name] for name in names}


@pytest.fixture
async def own_objects(
    fuzz_client: httpx.AsyncClient, user: uuid.UUID, connection: AsyncConnection
) -> OwnObjects:
    """A room, a persona and a document of the user, made through the API."""
    persona = await fuzz_client.post(
        "/api/virtual-users", json={"name": "Fuzzy", "system_prompt": "Be brief."}
    )
    room = await fuzz_client.post("/api/chat-rooms", json={"title": "Fuzz room"})
    document = await fuzz_client.post(
        "/api/documents", json={"title": "Fuzz notes", "content": "Some text."}
    )
    for response in (persona, room, document):
        assert response.is_success, response.text
    return OwnObjects(
        ids={
            "room_id": room.json()["id"],
            "persona_id": persona.json()["id"],
            "document_id": document.json()["id"],
            "user_id": str(user),
        }
    )
