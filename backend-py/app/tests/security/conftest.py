"""A stranger with secrets: a room with history, a persona and documents.

The tests send requests about the stranger's things as the ``user`` fixture
(``auth_client``) and check that nothing of them comes back.
"""

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from src.app import create_app
from src.infra.ai_providers import AIProviders
from src.infra.db_client import Database
from src.runtime import runtime
from src.settings import Settings
from src.worker.ingestion_worker import IngestionWorker
from tests.factories import auth_headers, create_user, mint_token


@dataclass(frozen=True)
class Stranger:
    """Another user's ids, and the words only their things contain."""

    user_id: uuid.UUID
    room_id: int
    message_id: int
    persona_id: int
    document_id: int
    room_document_id: int
    secrets: tuple[str, ...]

    def leaked_in(self, text: str) -> list[str]:
        """The secrets (and the stranger's id) that appear in ``text``."""
        return [s for s in (*self.secrets, str(self.user_id)) if s in text]


@pytest.fixture
async def stranger_client(
    app: FastAPI, connection: AsyncConnection
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a second user."""
    user_id = await create_user(connection)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://test",
        headers=auth_headers(mint_token(user_id)),
    ) as client:
        yield client


async def created(response: httpx.Response) -> int:
    """The id of what a request created."""
    assert response.is_success, response.text
    return int(response.json()["id"])


@pytest.fixture
async def stranger(
    stranger_client: httpx.AsyncClient,
    database: Database,
    ai_providers: AIProviders,
    settings: Settings,
) -> Stranger:
    """The stranger's room (with a turn), persona and indexed documents."""
    me = (await stranger_client.get("/api/me")).json()
    persona_id = await created(
        await stranger_client.post(
            "/api/virtual-users",
            json={"name": "Sphinx", "system_prompt": "Guard SECRET-PROMPT-4711."},
        )
    )
    room_id = await created(
        await stranger_client.post(
            "/api/chat-rooms",
            json={"title": "SECRET-ROOM-TITLE", "virtual_user_id": persona_id},
        )
    )
    turn = await stranger_client.post(
        "/api/chat",
        json={"message": "SECRET-MESSAGE-0815 is mine", "chat_room_id": room_id},
    )
    assert turn.status_code == 200, turn.text
    document_id = await created(
        await stranger_client.post(
            "/api/documents",
            json={"title": "SECRET-DOC-TITLE", "content": "SECRET-DOC-CONTENT zebra"},
        )
    )
    room_document_id = await created(
        await stranger_client.post(
            "/api/documents",
            json={
                "title": "SECRET-ROOM-DOC",
                "content": "SECRET-ROOM-DOC-CONTENT zebra",
                "visibility": "room",
                "chat_room_id": room_id,
            },
        )
    )
    worker = IngestionWorker(
        database=database,
        embeddings=ai_providers.embeddings,
        embedding_model_name=ai_providers.embedding_model_name,
        settings=settings,
    )
    assert await worker.drain(only_ids=[document_id, room_document_id])
    return Stranger(
        user_id=uuid.UUID(me["id"]),
        room_id=room_id,
        message_id=turn.json()["user_message_id"],
        persona_id=persona_id,
        document_id=document_id,
        room_document_id=room_document_id,
        secrets=(
            "SECRET",
            "Sphinx",
            me["account_name"],
        ),
    )


ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def client_with(
    settings: Settings,
    database: Database,
    ai_providers: AIProviders,
    user_token: str,
) -> ClientFactory:
    """Opens a client of an app built with some settings changed (the limits).

    Call it as ``async with client_with(max_request_bytes=2048) as client``;
    the client sends the ``user`` fixture's token.
    """

    @asynccontextmanager
    async def open_client(**changes: Any) -> AsyncIterator[httpx.AsyncClient]:
        changed = settings.model_copy(update=changes)
        app = create_app(changed)
        async with runtime(app, changed, database, ai=ai_providers):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(
                transport=transport,
                base_url="http://test",
                headers=auth_headers(user_token),
            ) as client:
                yield client

    return open_client


ROW_COUNTS = text(
    "select (select count(*) from public.chat_rooms), "
    "(select count(*) from public.messages), "
    "(select count(*) from public.documents), "
    "(select count(*) from public.virtual_users), "
    "(select count(*) from public.user_profiles where settings <> '{}'::jsonb)"
)


async def row_counts(connection: AsyncConnection) -> tuple[int, ...]:
    """Rooms, messages, documents, personas and customised profiles."""
    return tuple((await connection.execute(ROW_COUNTS)).one())
