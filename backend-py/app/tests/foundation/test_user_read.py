"""Database.user_read: one read as the user, nothing left on the pooled connection.

An engine of one pooled connection (as in test_db_client.py), so every read
and every check after it use the same server session: a role or claims that
outlived a read would show on the next use of that connection.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from src.domain.errors import ServerBusyError, ServiceUnavailableError
from src.infra.db_client import Database, create_engine
from tests.conftest import make_settings

CLAIMS = {"sub": str(uuid.UUID(int=9)), "role": "authenticated"}
WHO = (
    "select current_user::text, auth.uid()::text, "
    "current_setting('request.jwt.claims', true), "
    "current_setting('transaction_read_only'), pg_backend_pid()"
)


@pytest.fixture
async def own_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine of one pooled connection, outside the test's rollback."""
    engine = create_engine(
        database_url,
        make_settings(
            database_url, db_pool_size=1, db_max_overflow=0, db_pool_timeout_s=0.3
        ),
    )
    yield engine
    await engine.dispose()


async def session_state(engine: AsyncEngine) -> tuple[str, str, bool]:
    """The pooled connection's role, claims and transaction state, as a next user
    (the service, on the same pooled connection) finds them."""
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        in_transaction = bool(driver.is_in_transaction())
        row = (
            await connection.execute(
                text(
                    "select current_user::text, "
                    "coalesce(current_setting('request.jwt.claims', true), '')"
                )
            )
        ).one()
        await connection.rollback()
    return str(row[0]), str(row[1]), in_transaction


async def test_a_read_runs_as_the_user_and_leaves_nothing_behind(
    own_engine: AsyncEngine,
) -> None:
    database = Database(engine=own_engine)
    owner, _, _ = await session_state(own_engine)
    [row] = await database.user_read(CLAIMS, WHO)
    assert (row[0], row[1], row[3]) == ("authenticated", CLAIMS["sub"], "on")
    assert owner != "authenticated"
    assert await session_state(own_engine) == (owner, "", False)
    [again] = await database.user_read(CLAIMS | {"sub": str(uuid.UUID(int=3))}, WHO)
    assert again[4] == row[4], "the same pooled connection served both reads"
    assert again[1] == str(uuid.UUID(int=3))


async def test_parameters_and_row_level_security_apply(
    own_engine: AsyncEngine,
) -> None:
    database = Database(engine=own_engine)
    rows = await database.user_read(CLAIMS, "select $1::bigint + 1", 41)
    assert [tuple(r) for r in rows] == [(42,)]
    # general_users has row-level security: a user sees their own row only,
    # and this one has none; the service sees every row.
    assert await database.user_read(CLAIMS, "select id from general_users") == []


async def test_a_failed_read_leaves_a_clean_connection(
    own_engine: AsyncEngine,
) -> None:
    database = Database(engine=own_engine)
    owner, _, _ = await session_state(own_engine)
    with pytest.raises(asyncpg.DivisionByZeroError):  # a bug: raised as it is
        await database.user_read(CLAIMS, "select 1 / 0")
    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):  # reads only
        await database.user_read(CLAIMS, "create temp table t (v int)")
    assert await session_state(own_engine) == (owner, "", False)


async def test_a_cancelled_read_leaves_a_clean_connection(
    own_engine: AsyncEngine,
) -> None:
    database = Database(engine=own_engine)
    owner, _, _ = await session_state(own_engine)
    read = asyncio.create_task(database.user_read(CLAIMS, "select pg_sleep(30)"))
    await asyncio.sleep(0.3)  # inside the read's transaction, as the user
    read.cancel()
    with pytest.raises(asyncio.CancelledError):
        await read
    assert await session_state(own_engine) == (owner, "", False)
    [row] = await database.user_read(CLAIMS, WHO)
    assert row[0] == "authenticated"


async def test_a_dead_pooled_connection_is_replaced(
    own_engine: AsyncEngine, engine: AsyncEngine
) -> None:
    database = Database(engine=own_engine)
    [first] = await database.user_read(CLAIMS, WHO)
    async with engine.connect() as admin:
        await admin.execute(
            text("select pg_terminate_backend(:pid, 5000)"), {"pid": first[4]}
        )
    [second] = await database.user_read(CLAIMS, WHO)
    assert second[4] != first[4]
    assert second[0] == "authenticated"


async def test_no_connection_freeing_up_in_time_is_server_busy(
    own_engine: AsyncEngine,
) -> None:
    database = Database(engine=own_engine)
    async with own_engine.connect() as holding:
        await holding.execute(text("select 1"))  # the one connection is held
        with pytest.raises(ServerBusyError):
            await database.user_read(CLAIMS, WHO)
    [row] = await database.user_read(CLAIMS, WHO)  # freed: the next read gets it
    assert row[0] == "authenticated"


async def test_a_statement_timeout_is_unavailable_not_a_bug(database_url: str) -> None:
    settings = make_settings(database_url, db_pool_size=1, db_statement_timeout_ms=50)
    engine = create_engine(database_url, settings)
    try:
        with pytest.raises(ServiceUnavailableError) as timed_out:
            await Database(engine=engine).user_read(CLAIMS, "select pg_sleep(5)")
    finally:
        await engine.dispose()
    assert not isinstance(timed_out.value, ServerBusyError)
    assert timed_out.value.status_code == 503
    assert isinstance(timed_out.value.__cause__, asyncpg.QueryCanceledError)
