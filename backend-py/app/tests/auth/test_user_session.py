"""UserSessionDep: one transaction per request, as the caller, committed first.

The routes here exist only in the tests. They read whole tables without any
WHERE clause, so only row-level security stands between two users.
"""

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from src.app import create_app
from src.controller.dependencies import (
    CurrentUserDep,
    UserSessionDep,
    current_user,
    user_session,
)
from src.domain.entity.user import CurrentUser
from src.domain.errors import ConflictError
from src.infra.ai_providers import AIProviders
from src.infra.db_client import Database
from src.runtime import runtime
from src.settings import Settings
from tests.factories import auth_headers, create_room, create_user, mint_token

probe = APIRouter(prefix="/test")


@probe.get("/messages")
async def every_message(session: UserSessionDep) -> list[int]:
    """Every message the database lets the caller see."""
    return list((await session.scalars(text("select id from messages"))).all())


@probe.get("/documents")
async def every_document(session: UserSessionDep) -> list[int]:
    """Every document the database lets the caller see."""
    return list((await session.scalars(text("select id from documents"))).all())


@probe.get("/whoami")
async def whoami(session: UserSessionDep, user: CurrentUserDep) -> dict[str, str]:
    """The role and auth.uid() of the request's transaction."""
    row = (await session.execute(text("select current_user, auth.uid()"))).one()
    return {"role": row[0], "uid": str(row[1]), "user": str(user.id)}


@probe.post("/rename")
async def rename(session: UserSessionDep, user: CurrentUserDep, fail: bool) -> None:
    """Change the caller's display name, then fail when asked to."""
    await session.execute(
        text("update general_users set display_name = 'renamed' where id = :id"),
        {"id": user.id},
    )
    if fail:
        raise ConflictError("failing after the write")


async def _write_a_deferred_violation(session: AsyncSession) -> None:
    # A deferred unique constraint is checked at COMMIT, after the handler ran.
    await session.execute(
        text(
            "create temp table commit_guard (id int primary key "
            "deferrable initially deferred) on commit drop"
        )
    )
    await session.execute(text("insert into commit_guard values (1), (1)"))


@probe.post("/commit-fails")
async def commit_fails(session: UserSessionDep) -> dict[str, str]:
    """A write whose COMMIT fails."""
    await _write_a_deferred_violation(session)
    return {"status": "saved"}


LateSession = Annotated[AsyncSession, Depends(user_session)]


@probe.post("/commit-fails-after-response")
async def commit_fails_after_response(session: LateSession) -> dict[str, str]:
    """The same write with FastAPI's default scope: commits after sending."""
    await _write_a_deferred_violation(session)
    return {"status": "saved"}


def client_of(app: FastAPI, **headers: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers)


@pytest.fixture
def probe_app(app: FastAPI) -> FastAPI:
    app.include_router(probe)
    return app


async def _room_with_message_and_document(
    connection: AsyncConnection, owner: uuid.UUID
) -> tuple[int, int]:
    room_id = await create_room(connection, owner)
    message_id = (
        await connection.execute(
            text(
                "insert into messages (chat_room_id, sender_user_id, role, content) "
                "values (:r, :u, 'user', 'secret') returning id"
            ),
            {"u": owner, "r": room_id},
        )
    ).scalar_one()
    document_id = (
        await connection.execute(
            text(
                "insert into documents (owner_id, title, content) "
                "values (:u, 'mine', 'private text') returning id"
            ),
            {"u": owner},
        )
    ).scalar_one()
    return int(message_id), int(document_id)


async def test_a_user_reads_only_their_rows_without_any_application_check(
    probe_app: FastAPI, connection: AsyncConnection
) -> None:
    alice = await create_user(connection)
    bob = await create_user(connection)
    alice_message, alice_document = await _room_with_message_and_document(
        connection, alice
    )
    bob_message, bob_document = await _room_with_message_and_document(connection, bob)

    async with client_of(probe_app, **auth_headers(mint_token(alice))) as client:
        messages = (await client.get("/test/messages")).json()
        documents = (await client.get("/test/documents")).json()

    assert alice_message in messages
    assert bob_message not in messages
    assert alice_document in documents
    assert bob_document not in documents


async def test_the_transaction_runs_as_authenticated_with_the_callers_uid(
    probe_app: FastAPI, auth_client: httpx.AsyncClient, user: uuid.UUID
) -> None:
    body = (await auth_client.get("/test/whoami")).json()
    assert body == {"role": "authenticated", "uid": str(user), "user": str(user)}


async def display_name(connection: AsyncConnection, user_id: uuid.UUID) -> str:
    row = await connection.execute(
        text("select display_name from general_users where id = :id"), {"id": user_id}
    )
    return str(row.scalar_one())


async def test_a_successful_request_commits_its_writes(
    probe_app: FastAPI,
    auth_client: httpx.AsyncClient,
    connection: AsyncConnection,
    user: uuid.UUID,
) -> None:
    response = await auth_client.post("/test/rename", params={"fail": False})
    assert response.status_code == 200
    assert await display_name(connection, user) == "renamed"


async def test_a_failing_request_rolls_its_writes_back(
    probe_app: FastAPI,
    auth_client: httpx.AsyncClient,
    connection: AsyncConnection,
    user: uuid.UUID,
) -> None:
    before = await display_name(connection, user)
    response = await auth_client.post("/test/rename", params={"fail": True})
    assert response.status_code == 409
    assert await display_name(connection, user) == before


@pytest.fixture
async def committing_app(
    settings: Settings, engine: AsyncEngine, ai_providers: AIProviders
) -> AsyncIterator[FastAPI]:
    """The app on a real (committing) database, the caller faked.

    Needed because the test transaction's savepoints never reach COMMIT; the
    routes used here write only to a temporary table, so nothing persists.
    """
    app = create_app(settings)
    app.include_router(probe)
    caller = CurrentUser(
        id=uuid.uuid4(),
        email=None,
        role="authenticated",
        claims={"sub": "00000000-0000-0000-0000-000000000000", "role": "authenticated"},
    )
    app.dependency_overrides[current_user] = lambda: caller
    async with runtime(app, settings, Database(engine=engine), ai=ai_providers):
        yield app


async def test_a_failed_commit_is_an_error_response_not_a_200(
    committing_app: FastAPI,
) -> None:
    async with client_of(committing_app) as client:
        response = await client.post("/test/commit-fails")
    assert response.status_code == 500
    assert response.json()["error"] == "internal_error"


async def test_without_function_scope_the_same_failure_would_be_a_200(
    committing_app: FastAPI,
) -> None:
    # Shows why UserSessionDep uses scope="function": FastAPI's default runs
    # the commit after the response has been sent.
    async with client_of(committing_app) as client:
        response = await client.post("/test/commit-fails-after-response")
    assert response.status_code == 200
