"""Fixtures: one real Postgres per test session, a rolled-back transaction per test.

The database is an embedded PostgreSQL + pgvector in a temporary folder (or
``TEST_DATABASE_URL``), made Supabase-like and migrated once. Each test gets a
connection inside an outer transaction; every session the app opens joins it
with a savepoint, and the outer transaction is rolled back when the test ends.
"""

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from src.app import create_app
from src.infra.db_client import Database, create_engine, libpq_url
from src.infra.embedded_postgres import start_embedded_postgres
from src.infra.migrations import apply_compat_layer, apply_migrations
from src.infra.runtime import runtime
from src.settings import Settings


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings for tests: no env file, the test database, quiet logs."""
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
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

    ``set_config(..., true)`` outlives a released savepoint, so a user
    transaction resets the role at its end, as the end of a real transaction does.
    """

    @asynccontextmanager
    async def user_transaction(self, claims: Any) -> AsyncIterator[AsyncSession]:
        async with super().user_transaction(claims) as session:
            try:
                yield session
            finally:
                await session.execute(
                    text(
                        "select set_config('role', 'none', true), "
                        "set_config('request.jwt.claims', '', true)"
                    )
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


@pytest.fixture
async def app(settings: Settings, database: Database) -> AsyncIterator[FastAPI]:
    """The app with the clients the lifespan builds, on the test transaction."""
    app = create_app(settings)
    async with runtime(app, settings, database):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client speaking to the ASGI app in process."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c
