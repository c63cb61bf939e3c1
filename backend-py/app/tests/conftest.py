"""Fixtures: one real Postgres per test session, a rolled-back transaction per test.

The database is an embedded PostgreSQL + pgvector in a temporary folder (or
``TEST_DATABASE_URL``), made Supabase-like and migrated once. Each test gets a
connection inside an outer transaction; every session the app opens joins it
with a savepoint, and the outer transaction is rolled back when the test ends.
"""

import asyncio
import json
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from src.app import create_app
from src.infra.ai_providers import AIProviders, build_ai_providers
from src.infra.db_client import Database, create_engine, libpq_url
from src.infra.embedded_postgres import start_embedded_postgres
from src.infra.migrations import apply_compat_layer, apply_migrations
from src.runtime import runtime
from src.settings import DEV_JWT_SECRET, Settings
from tests.factories import auth_headers, create_user, mint_token
from tests.support.langsmith_recorder import LangSmithRecorder


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings for tests: no env file, the test database, quiet logs."""
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "supabase_jwt_secret": DEV_JWT_SECRET,
        "log_json": False,
        "log_level": "WARNING",
        "worker_enabled": False,
        "openai_api_key": None,
        "langsmith_tracing": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A migrated, Supabase-like database for the whole test session."""
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        apply_migrations(libpq_url(external))
        yield external
        return
    with tempfile.TemporaryDirectory(prefix="ragchat-test-") as tmp:
        server = start_embedded_postgres(Path(tmp) / "pg", cleanup_mode="delete")
        apply_compat_layer(server.conninfo())
        apply_migrations(server.conninfo())
        yield server.url()
        server.stop()


@pytest.fixture(scope="module", autouse=True)
def vacuumed_chunks(database_url: str) -> None:
    """Clear the chunks that earlier tests inserted and rolled back.

    Rolled-back rows stay in the HNSW index until a vacuum; past
    ``hnsw.max_scan_tuples`` of them a filtered vector search stops early and
    finds too few chunks. A real database has autovacuum; the test session
    rolls back thousands of chunks faster than it runs.
    """
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute("vacuum public.document_chunks")


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    """The settings every test app is built with."""
    return make_settings(database_url)


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """One engine for the test session."""
    assert settings.database_url is not None
    engine = create_engine(settings.database_url, settings)
    yield engine
    await engine.dispose()


class RollbackDatabase(Database):
    """A :class:`Database` whose transactions are savepoints of the test's one.

    A user transaction takes the role and claims as the real one does, in a
    savepoint instead of its own ``BEGIN`` (tests/foundation/test_db_client.py
    covers the real one). ``set_config(..., true)`` outlives a released
    savepoint, so it resets the role at its end, as a real transaction's end
    does.

    The savepoints share the test's one connection, so they take turns: work
    running concurrently in one test (a stream and a request) must not open a
    savepoint inside another's.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self._connection_turn = asyncio.Lock()

    @asynccontextmanager
    async def service_statement(self) -> AsyncIterator[AsyncSession]:
        async with self.service_transaction() as session:
            yield session

    @asynccontextmanager
    async def answer_statement(self) -> AsyncIterator[AsyncSession]:
        async with self.service_transaction() as session:
            yield session

    @asynccontextmanager
    async def service_transaction(self) -> AsyncIterator[AsyncSession]:
        async with (
            self._connection_turn,
            self.sessionmaker() as session,
            session.begin(),
        ):
            yield session

    @asynccontextmanager
    async def user_transaction(self, claims: Any) -> AsyncIterator[AsyncSession]:
        async with (
            self._connection_turn,
            self.sessionmaker() as session,
            session.begin(),
        ):
            await session.execute(
                text(
                    "select set_config('role', 'authenticated', true), "
                    "set_config('request.jwt.claims', :claims, true)"
                ),
                {"claims": json.dumps(claims)},
            )
            yield session
            # Only on success: a rolled-back savepoint already undid the settings.
            if session.in_transaction():
                await session.execute(text(_RESET_ROLE))

    async def user_read(self, claims: Any, query: str, *args: Any) -> list[Any]:
        async with self.user_transaction(claims) as session:
            connection = await session.connection()
            driver: Any = (await connection.get_raw_connection()).driver_connection
            rows: list[Any] = await driver.fetch(query, *args)
            return rows


_RESET_ROLE = (
    "select set_config('role', 'none', true), "
    "set_config('request.jwt.claims', '', true)"
)


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection in a transaction that is rolled back after the test."""
    async with engine.connect() as conn:
        outer = await conn.begin()
        yield conn
        if outer.is_active:
            await outer.rollback()


@pytest.fixture
def database(engine: AsyncEngine, connection: AsyncConnection) -> Database:
    """The app's :class:`Database`, bound to the test's rolled-back transaction."""
    database = RollbackDatabase(engine=engine)
    database.sessionmaker.configure(
        bind=connection, join_transaction_mode="create_savepoint"
    )
    return database


@pytest.fixture(scope="session")
async def ai_providers() -> AsyncIterator[AIProviders]:
    """The offline AI providers (MiniLM, extractive model), built once a session."""
    providers = build_ai_providers(
        Settings(
            _env_file=None,
            environment="test",
            openai_api_key=None,
            langsmith_tracing=False,
        )
    )
    yield providers
    await providers.aclose()


@pytest.fixture
async def app(
    settings: Settings, database: Database, ai_providers: AIProviders
) -> AsyncIterator[FastAPI]:
    """The app with the clients the lifespan builds, on the test transaction."""
    app = create_app(settings)
    async with runtime(app, settings, database, ai=ai_providers):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client speaking to the ASGI app in process."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.fixture
async def user(connection: AsyncConnection) -> uuid.UUID:
    """A fresh user (``auth.users`` + ``general_users``), rolled back after the test."""
    return await create_user(connection)


@pytest.fixture
async def user_token(user: uuid.UUID, connection: AsyncConnection) -> str:
    """A valid HS256 access token of :func:`user` (with its email claim)."""
    email = await connection.scalar(
        text("select email from auth.users where id = :id"), {"id": user}
    )
    return mint_token(user, email=email)


@pytest.fixture
async def auth_client(
    app: FastAPI, user_token: str
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client to the app sending :func:`user`'s bearer token."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=auth_headers(user_token)
    ) as c:
        yield c


@pytest.fixture
def recorder() -> Iterator[LangSmithRecorder]:
    """A LangSmith ingest recorder on 127.0.0.1 (point LANGSMITH_ENDPOINT at it)."""
    recorder = LangSmithRecorder()
    recorder.start()
    yield recorder
    recorder.stop()
