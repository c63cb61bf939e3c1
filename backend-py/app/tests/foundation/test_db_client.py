"""Database: session defaults on every connection, and no ping before each use."""

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from src.infra.db_client import Database, async_url, create_engine, libpq_url
from tests.conftest import make_settings

CLAIMS = {"sub": str(uuid.UUID(int=7)), "role": "authenticated"}
BACKEND_PID = text("select pg_backend_pid()")


@pytest.fixture
async def own_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine of one pooled connection, outside the test's rollback."""
    engine = create_engine(
        database_url,
        make_settings(
            database_url, db_pool_size=1, db_max_overflow=0, hnsw_ef_search=77
        ),
    )
    yield engine
    await engine.dispose()


async def test_connections_start_with_the_search_and_timeout_settings(
    own_engine: AsyncEngine,
) -> None:
    async with Database(engine=own_engine).user_transaction(CLAIMS) as session:
        row = (
            await session.execute(
                text(
                    "select current_setting('hnsw.ef_search'), "
                    "current_setting('hnsw.iterative_scan'), "
                    "current_setting('statement_timeout') <> '0', current_user"
                )
            )
        ).one()
    assert tuple(row) == ("77", "relaxed_order", True, "authenticated")


async def test_a_dead_pooled_connection_is_replaced_without_an_error(
    own_engine: AsyncEngine, engine: AsyncEngine
) -> None:
    database = Database(engine=own_engine)
    async with database.user_transaction(CLAIMS) as session:
        first_pid = (await session.execute(BACKEND_PID)).scalar_one()
    # As a database restart would: the pooled connection's server process ends.
    async with engine.connect() as admin:
        await admin.execute(
            text("select pg_terminate_backend(:pid, 5000)"), {"pid": first_pid}
        )
    async with database.user_transaction(CLAIMS) as session:
        second_pid = (await session.execute(BACKEND_PID)).scalar_one()
        role = (await session.execute(text("select current_user"))).scalar_one()
    assert second_pid != first_pid
    assert role == "authenticated"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://u:p@db.example.co:5432/postgres?sslmode=require",
            "postgresql+asyncpg://u:p@db.example.co:5432/postgres?ssl=require",
        ),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        (
            "postgresql+psycopg://postgres@/postgres?host=/tmp/pg",
            "postgresql+asyncpg://postgres@/postgres?host=/tmp/pg",
        ),
    ],
)
def test_any_postgres_url_becomes_an_asyncpg_one(url: str, expected: str) -> None:
    assert async_url(url) == expected


def test_the_worker_gets_back_a_libpq_url() -> None:
    url = "postgresql+asyncpg://u:p@h:5432/postgres?ssl=verify-full&host=/tmp/pg"
    assert libpq_url(url) == (
        "postgresql://u:p@h:5432/postgres?sslmode=verify-full&host=/tmp/pg"
    )


def test_a_url_of_another_database_is_refused() -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        async_url("mysql://u@h/db")
