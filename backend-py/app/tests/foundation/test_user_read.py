"""Database.user_read: one read as the user, nothing left on the pooled connection.

An engine of one pooled connection (as in test_db_client.py), so every read
and every check after it use the same server session: a role, claims or
read-only mode that outlived a read would show on the next use of that
connection. The tables are the test's own (created and dropped here), with a
policy of their own, so row-level security is tested without the app's data.
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

ALICE, BOB = uuid.UUID(int=9), uuid.UUID(int=10)
WHO = (
    "select current_user::text as who, auth.uid() as uid, "
    "current_setting('transaction_read_only') as read_only, "
    "pg_backend_pid() as pid"
)
SECRETS = "select owner, secret from user_read_probe where owner = $1 order by secret"


def claims(user: uuid.UUID) -> dict[str, str]:
    return {"sub": str(user), "role": "authenticated"}


@pytest.fixture
async def own_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine of one pooled connection, and a table only its owner reads."""
    engine = create_engine(
        database_url,
        make_settings(
            database_url, db_pool_size=1, db_max_overflow=0, db_pool_timeout_s=0.3
        ),
    )
    async with engine.begin() as connection:
        for statement in (
            "drop table if exists user_read_probe",
            "drop sequence if exists user_read_probe_seq",
            "create sequence user_read_probe_seq",
            "grant usage on sequence user_read_probe_seq to authenticated",
            "create table user_read_probe (owner uuid, secret text)",
            "alter table user_read_probe enable row level security",
            "create policy own on user_read_probe for select to authenticated "
            "using (owner = (select auth.uid()))",
            "grant select on user_read_probe to authenticated",
        ):
            await connection.execute(text(statement))
        await connection.execute(
            text(
                "insert into user_read_probe values (:a, 'a1'), (:a, 'a2'), (:b, 'b')"
            ),
            {"a": ALICE, "b": BOB},
        )
    yield engine
    async with engine.begin() as connection:
        await connection.execute(text("drop table user_read_probe"))
        await connection.execute(text("drop sequence user_read_probe_seq"))
    await engine.dispose()


async def session_state(engine: AsyncEngine) -> tuple[str, str, str, bool]:
    """What the pooled connection's next user (the service) finds on it."""
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        in_transaction = bool(driver.is_in_transaction())
        row = (
            await connection.execute(
                text(
                    "select current_user::text, "
                    "coalesce(current_setting('request.jwt.claims', true), ''), "
                    "current_setting('transaction_read_only')"
                )
            )
        ).one()
        await connection.rollback()
    return str(row[0]), str(row[1]), str(row[2]), in_transaction


async def test_a_read_runs_as_the_user_and_leaves_nothing_behind(
    own_engine: AsyncEngine,
) -> None:
    database = Database(engine=own_engine)
    owner = (await session_state(own_engine))[0]
    [row] = await database.user_read(claims(ALICE), WHO)
    assert (row["who"], str(row["uid"]), row["read_only"]) == (
        "authenticated",
        str(ALICE),
        "on",
    )
    assert owner != "authenticated"
    assert await session_state(own_engine) == (owner, "", "off", False)
    [again] = await database.user_read(claims(BOB), WHO)
    assert again["pid"] == row["pid"], "the same pooled connection served both"
    assert str(again["uid"]) == str(BOB)


async def test_row_level_security_applies_to_every_reader(
    own_engine: AsyncEngine,
) -> None:
    database = Database(engine=own_engine)
    # The same statement, on the same connection, for one user then another:
    # each sees their own rows only, whoever read before.
    for reader in (ALICE, BOB, ALICE, BOB):
        for target in (ALICE, BOB):
            rows = await database.user_read(claims(reader), SECRETS, target)
            expected = {ALICE: ["a1", "a2"], BOB: ["b"]}[target]
            assert [r["secret"] for r in rows] == (expected if reader == target else [])
    stranger = await database.user_read(claims(uuid.UUID(int=11)), SECRETS, ALICE)
    assert stranger == []


async def test_a_failed_read_leaves_a_clean_connection(
    own_engine: AsyncEngine,
) -> None:
    database = Database(engine=own_engine)
    owner = (await session_state(own_engine))[0]
    with pytest.raises(asyncpg.DivisionByZeroError):  # a bug: raised as it is
        await database.user_read(
            claims(ALICE), "select 1 / count(*) from pg_class where false"
        )
    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):  # reads only
        await database.user_read(
            claims(ALICE), "select nextval('user_read_probe_seq') as n"
        )
    assert await session_state(own_engine) == (owner, "", "off", False)


async def test_a_cancelled_read_leaves_a_clean_connection(
    own_engine: AsyncEngine,
) -> None:
    database = Database(engine=own_engine)
    owner = (await session_state(own_engine))[0]
    read = asyncio.create_task(
        database.user_read(claims(ALICE), "select pg_sleep(30) as slept")
    )
    await asyncio.sleep(0.3)  # inside the read's transaction, as the user
    read.cancel()
    with pytest.raises(asyncio.CancelledError):
        await read
    assert await session_state(own_engine) == (owner, "", "off", False)
    [row] = await database.user_read(claims(ALICE), WHO)
    assert row["who"] == "authenticated"


async def test_a_dead_pooled_connection_is_replaced(
    own_engine: AsyncEngine, engine: AsyncEngine
) -> None:
    database = Database(engine=own_engine)
    [first] = await database.user_read(claims(ALICE), WHO)
    async with engine.connect() as admin:
        await admin.execute(
            text("select pg_terminate_backend(:pid, 5000)"), {"pid": first["pid"]}
        )
    [second] = await database.user_read(claims(ALICE), WHO)
    assert second["pid"] != first["pid"]
    assert second["who"] == "authenticated"


async def test_no_connection_freeing_up_in_time_is_server_busy(
    own_engine: AsyncEngine,
) -> None:
    database = Database(engine=own_engine)
    async with own_engine.connect() as holding:
        await holding.execute(text("select 1"))  # the one connection is held
        with pytest.raises(ServerBusyError):
            await database.user_read(claims(ALICE), WHO)
    [row] = await database.user_read(claims(ALICE), WHO)  # freed: the next gets it
    assert row["who"] == "authenticated"


async def test_a_statement_timeout_is_unavailable_not_a_bug(database_url: str) -> None:
    settings = make_settings(database_url, db_pool_size=1, db_statement_timeout_ms=50)
    engine = create_engine(database_url, settings)
    try:
        with pytest.raises(ServiceUnavailableError) as timed_out:
            await Database(engine=engine).user_read(
                claims(ALICE), "select pg_sleep(5) as slept"
            )
    finally:
        await engine.dispose()
    assert not isinstance(timed_out.value, ServerBusyError)
    assert timed_out.value.status_code == 503
    assert isinstance(timed_out.value.__cause__, asyncpg.QueryCanceledError)
