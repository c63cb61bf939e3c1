"""Database: one round trip to begin as the user, session defaults, no ping.

These tests use an engine of their own (one pooled connection, so every
transaction reuses it) because the test suite's ``database`` fixture runs user
transactions as savepoints of the test's transaction instead.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from src.domain.errors import ServerBusyError
from src.infra.db_client import (
    Database,
    async_url,
    create_engine,
    decode_vector,
    encode_vector,
    libpq_url,
    sql_literal,
)
from tests.conftest import make_settings
from tests.support.dropping_pooler import DroppingPooler

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


async def notes(session: AsyncSession) -> list[str]:
    await session.execute(text("create temp table if not exists notes (v text)"))
    rows = await session.execute(text("select v from notes order by v"))
    return list(rows.scalars())


async def insert_then_fail(database: Database, value: str, failing_sql: str) -> None:
    async with database.user_transaction(CLAIMS) as session:
        await session.execute(text("insert into notes values (:v)"), {"v": value})
        await session.execute(text(failing_sql))


async def insert_in_failing_savepoint(session: AsyncSession) -> None:
    async with session.begin_nested():
        await session.execute(text("insert into notes values ('inner')"))
        await session.execute(text("select 1 / 0"))


async def test_a_transaction_commits_what_its_block_did(
    own_engine: AsyncEngine,
) -> None:
    database = Database(engine=own_engine)
    async with database.user_transaction(CLAIMS) as session:
        await notes(session)
        await session.execute(text("insert into notes values ('kept')"))
    async with database.user_transaction(CLAIMS) as session:
        assert await notes(session) == ["kept"]


async def test_a_block_that_raises_leaves_nothing_and_a_clean_connection(
    own_engine: AsyncEngine,
) -> None:
    database = Database(engine=own_engine)
    async with database.user_transaction(CLAIMS) as session:
        await notes(session)
    with pytest.raises(DBAPIError):  # a statement fails
        await insert_then_fail(database, "lost", "select 1 / 0")
    with pytest.raises(DBAPIError):  # a statement is refused before it runs
        await insert_then_fail(database, "lost too", "select no_such_column")
    async with database.user_transaction(CLAIMS) as session:
        assert await notes(session) == []
        role = await session.execute(text("select current_user"))
        assert role.scalar_one() == "authenticated"


async def test_a_cancelled_block_is_rolled_back(own_engine: AsyncEngine) -> None:
    database = Database(engine=own_engine)
    inserted = asyncio.Event()

    async def cancelled_turn() -> None:
        async with database.user_transaction(CLAIMS) as session:
            await notes(session)
            await session.execute(text("insert into notes values ('cancelled')"))
            inserted.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(cancelled_turn())
    await inserted.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with database.user_transaction(CLAIMS) as session:
        assert await notes(session) == []


async def test_claims_reach_the_database_verbatim(own_engine: AsyncEngine) -> None:
    claims = CLAIMS | {"email": "o'brien@example.com", "name": "\\'; drop --"}
    async with Database(engine=own_engine).user_transaction(claims) as session:
        row = await session.execute(
            text(
                "select auth.jwt() ->> 'email', auth.jwt() ->> 'name', auth.uid()::text"
            )
        )
    assert tuple(row.one()) == (claims["email"], claims["name"], CLAIMS["sub"])


async def test_a_savepoint_inside_rolls_back_alone(own_engine: AsyncEngine) -> None:
    database = Database(engine=own_engine)
    async with database.user_transaction(CLAIMS) as session:
        await notes(session)
        await session.execute(text("insert into notes values ('outer')"))
        with pytest.raises(DBAPIError):
            await insert_in_failing_savepoint(session)
    async with database.user_transaction(CLAIMS) as session:
        assert await notes(session) == ["outer"]


def test_sql_literals_double_quotes_and_refuse_nul() -> None:
    assert sql_literal("it's") == "'it''s'"
    with pytest.raises(ValueError, match="NUL"):
        sql_literal("a\x00b")


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


async def test_a_statement_the_server_never_answers_times_out_on_the_client(
    database_url: str,
) -> None:
    # statement_timeout off: as if the server had stopped answering at all.
    settings = make_settings(
        database_url,
        db_pool_size=1,
        db_max_overflow=0,
        db_statement_timeout_ms=0,
        db_command_timeout_s=0.2,
    )
    engine = create_engine(database_url, settings)
    database = Database(engine=engine)
    try:
        with pytest.raises(TimeoutError):
            await sleep_in_transaction(database, seconds=30)
        async with database.user_transaction(CLAIMS) as session:
            role = await session.execute(text("select current_user"))
            assert role.scalar_one() == "authenticated"
    finally:
        await engine.dispose()


async def sleep_in_transaction(database: Database, *, seconds: float) -> None:
    async with database.user_transaction(CLAIMS) as session:
        await session.execute(text("select pg_sleep(:s)"), {"s": seconds})


def test_a_vector_encodes_to_pgvectors_binary_form_from_floats_or_text() -> None:
    packed = encode_vector([0.5, -1.0, 2.0])
    assert packed == bytes.fromhex("0003 0000 3f000000 bf800000 40000000")
    assert encode_vector("[0.5,-1,2]") == packed
    assert decode_vector(packed).tolist() == [0.5, -1.0, 2.0]


async def test_vectors_travel_in_binary_both_ways(database: Database) -> None:
    vector = text(
        "select cast(:v as extensions.vector)::text as text_form, "
        "cast(:v as extensions.vector) as value, "
        "cast(:v as extensions.vector) <=> cast(:w as extensions.vector) "
        "as distance"
    )
    async with database.user_transaction(CLAIMS) as session:
        result = await session.execute(vector, {"v": [0.25, 0.5], "w": "[0.5,1]"})
        rows = result.mappings().all()
    assert rows[0]["text_form"] == "[0.25,0.5]"
    assert rows[0]["value"].tolist() == [0.25, 0.5]
    assert rows[0]["distance"] == pytest.approx(0.0)


async def test_the_session_settings_hold_behind_a_pooler_that_drops_startup_parameters(
    database_url: str,
) -> None:
    async with DroppingPooler(database_url) as pooler:
        url = pooler.url_for(database_url)
        settings = make_settings(
            url, db_pool_size=1, db_statement_timeout_ms=4321, hnsw_ef_search=61
        )
        engine = create_engine(url, settings)
        try:
            async with Database(engine=engine).user_transaction(CLAIMS) as session:
                row = (
                    await session.execute(
                        text(
                            "select current_setting('statement_timeout'), "
                            "current_setting('plan_cache_mode'), "
                            "current_setting('random_page_cost'), "
                            "current_setting('hnsw.ef_search'), "
                            "current_setting('hnsw.iterative_scan'), current_user"
                        )
                    )
                ).one()
        finally:
            await engine.dispose()

    assert tuple(row) == (
        "4321ms",
        "force_generic_plan",
        "1.1",
        "61",
        "relaxed_order",
        "authenticated",
    )
    assert len(pooler.startups) == 1, "the one connection went through the pooler"


async def test_no_connection_freeing_up_in_time_is_server_busy_not_unavailable(
    database_url: str,
) -> None:
    engine = create_engine(
        database_url,
        make_settings(
            database_url, db_pool_size=1, db_max_overflow=0, db_pool_timeout_s=0.2
        ),
    )
    database = Database(engine=engine)
    try:
        async with database.user_transaction(CLAIMS) as holding:
            await holding.execute(text("select 1"))  # the one connection is held
            with pytest.raises(ServerBusyError) as as_user:
                async with database.user_transaction(CLAIMS):
                    pass
            with pytest.raises(ServerBusyError) as as_service:
                async with database.service_statement() as session:
                    await session.execute(text("select 1"))
            with pytest.raises(ServerBusyError):
                async with database.service_transaction() as session:
                    await session.execute(text("select 1"))
        # Freed: the next transaction gets it.
        async with database.service_statement() as session:
            assert (await session.execute(text("select 1"))).scalar_one() == 1
    finally:
        await engine.dispose()
    for busy in (as_user.value, as_service.value):
        assert (busy.status_code, busy.code) == (503, "server_busy")
        assert busy.headers["Retry-After"] == "2"


async def test_answers_are_saved_while_new_turns_wait_for_a_full_pool(
    database_url: str,
) -> None:
    settings = make_settings(
        database_url, db_pool_size=1, db_max_overflow=0, db_pool_timeout_s=0.2
    )
    database = Database(
        engine=create_engine(database_url, settings),
        answer_engine=create_engine(database_url, settings, pool_size=1),
    )
    try:
        async with database.user_transaction(CLAIMS) as holding:
            await holding.execute(text("select 1"))  # the turns' pool is full
            with pytest.raises(ServerBusyError):
                async with database.user_transaction(CLAIMS):
                    pass
            with pytest.raises(ServerBusyError):  # nor a rate-limit token
                async with database.service_statement() as session:
                    await session.execute(text("select 1"))
            # An answer's save still gets a connection, as the service.
            async with database.answer_statement() as session:
                role = (await session.execute(text("select current_user"))).scalar()
        assert role not in ("authenticated", "anon")
    finally:
        await database.dispose()
