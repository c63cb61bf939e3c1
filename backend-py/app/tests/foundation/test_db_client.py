"""Database: session defaults on every connection, and no ping before each use."""

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from src.infra.db_client import Database, create_engine
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
