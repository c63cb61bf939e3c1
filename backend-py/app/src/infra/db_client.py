"""Database engine, transactions as a user or as the service, and start-up.

Request code runs in :meth:`Database.user_transaction`: the transaction takes the
``authenticated`` role with the verified JWT claims in ``request.jwt.claims``, so
Postgres row-level security enforces what the API checks. Work that must bypass
RLS (creating ``general_users``, saving the AI's answer, the ingestion worker)
uses :meth:`Database.service_transaction` (or, for one statement,
:meth:`Database.service_statement`), named so they stand out in review.

Connections carry their session settings (timeouts, pgvector's HNSW search
settings) from the moment they open; a pooled connection is not pinged before
each use (a user transaction that finds its connection dead, because the
database restarted, retries once on a fresh one); and a user transaction
begins in one message.
"""

import asyncio
import json
import logging
import struct
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import asyncpg
from pgvector.utils import Vector
from sqlalchemy import event, text
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import greenlet_spawn

from src.domain.errors import ServerBusyError, ServiceUnavailableError
from src.infra.embedded_postgres import EmbeddedServer, start_embedded_postgres
from src.infra.migrations import (
    apply_compat_layer,
    apply_migrations,
    apply_seed,
    discover,
)
from src.settings import Settings

logger = logging.getLogger(__name__)

_BEGIN_AS_USER = (
    "begin; select set_config('role', 'authenticated', true), "
    "set_config('request.jwt.claims', {claims}, true)"
)
_BEGIN_READ_AS_USER = "begin read only; " + _BEGIN_AS_USER.removeprefix("begin; ")
DEAD_CONNECTION_ERRORS = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    OSError,
)
"""What asyncpg raises on a connection the server has closed."""


RETRY_AFTER_BUSY_S = 2
"""What a ``server_busy`` answer tells the client to wait."""


@contextmanager
def _busy_when_no_connection_frees_up() -> Iterator[None]:
    """A pool checkout that waited ``DB_POOL_TIMEOUT_S`` in vain: server busy.

    The pool's connections are all held, by requests of this process; when
    the process is saturated they are held while it gets round to them, not
    while the database works. Connecting failures stay "database unavailable".
    """
    try:
        yield
    except PoolTimeoutError as exc:
        raise ServerBusyError(
            "The server is at capacity; retry in a moment.",
            headers={"Retry-After": str(RETRY_AFTER_BUSY_S)},
        ) from exc


UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "53", "57"})
"""Connection exceptions, insufficient resources (too many connections), and
operator intervention (statement timeout, shutdown, server starting up)."""


@contextmanager
def _unavailable_on_failure() -> Iterator[None]:
    """A read the database could not serve now: ``ServiceUnavailableError``.

    A lost or refused connection, the driver's ``command_timeout``, or a
    SQLSTATE saying the server cannot serve now (timeouts, shutdown, too many
    connections). Any other error (a bug in a statement) is raised as it is.
    """
    try:
        yield
    except (*DEAD_CONNECTION_ERRORS, TimeoutError) as exc:
        raise ServiceUnavailableError(
            "The database is unavailable; try again shortly."
        ) from exc
    except asyncpg.PostgresError as exc:
        if str(exc.sqlstate)[:2] not in UNAVAILABLE_SQLSTATE_CLASSES:
            raise
        raise ServiceUnavailableError(
            "The database is unavailable; try again shortly."
        ) from exc


def sql_literal(text: str) -> str:
    """``text`` as a SQL string literal.

    Connections run with ``standard_conforming_strings`` on (see
    :func:`session_settings`): a doubled quote is then a literal's only escape.

    Raises:
        ValueError: ``text`` holds a NUL character, which no literal can.
    """
    if "\x00" in text:
        raise ValueError("a SQL literal cannot hold a NUL character")
    return "'" + text.replace("'", "''") + "'"


async def idle_driver_connection(session: AsyncSession) -> Any:
    """The session's asyncpg connection, never left inside a transaction.

    A transaction that a cancelled request could not end is rolled back here,
    before the connection serves anyone else.
    """
    connection = await session.connection()
    driver: Any = (await connection.get_raw_connection()).driver_connection
    if driver.is_in_transaction() and not driver.is_closed():
        await driver.execute("rollback")
    return driver


async def _close(session: AsyncSession) -> None:
    """Give an autocommit session's connection back to the pool, in this task.

    ``async with session`` closes in a task of its own, shielded from
    cancellation, and the caller would resume later with the connection still
    held. Closing an autocommit session whose transaction the caller has
    already ended does no I/O, so there is nothing a cancellation could
    interrupt halfway.
    """
    await session.close()


async def _roll_back(session: AsyncSession, driver: Any) -> None:
    """End the transaction; a dead connection is dropped from the pool instead."""
    try:
        await driver.execute("rollback")
    except DEAD_CONNECTION_ERRORS:
        await (await session.connection()).invalidate()


_DRIVER_PREFIXES = (
    "postgresql+asyncpg://",
    "postgresql+psycopg://",
    "postgresql://",
    "postgres://",
)


def async_url(url: str) -> str:
    """A SQLAlchemy URL using the asyncpg driver for any Postgres URL.

    libpq's ``sslmode`` becomes asyncpg's ``ssl`` (same values), so a Supabase
    connection string works as copied from the dashboard.
    """
    return "postgresql+asyncpg://" + _rename_query_keys(_without_scheme(url), SSL_KEY)


def libpq_url(url: str) -> str:
    """A libpq connection string for a SQLAlchemy or plain Postgres URL."""
    libpq_keys = {v: k for k, v in SSL_KEY.items()}
    return "postgresql://" + _rename_query_keys(_without_scheme(url), libpq_keys)


SSL_KEY = {"sslmode": "ssl"}
"""libpq's query key and asyncpg's, for the same setting."""


def _without_scheme(url: str) -> str:
    for prefix in _DRIVER_PREFIXES:
        if url.startswith(prefix):
            return url.removeprefix(prefix)
    raise ValueError("not a PostgreSQL URL (postgresql://...)")


def _rename_query_keys(rest: str, renames: Mapping[str, str]) -> str:
    location, separator, query = rest.partition("?")
    if not separator:
        return rest
    pairs = [
        (renames.get(key, key), value)
        for key, value in parse_qsl(query, keep_blank_values=True)
    ]
    return f"{location}?{urlencode(pairs, safe='/')}"


@dataclass
class Database:
    """The engine and session factories, built once in the app's lifespan."""

    engine: AsyncEngine
    embedded: EmbeddedServer | None = None
    answer_engine: AsyncEngine | None = None
    """Connections of their own for :meth:`answer_statement` (default: ``engine``)."""
    sessionmaker: async_sessionmaker[AsyncSession] = field(init=False)
    autocommit_sessionmaker: async_sessionmaker[AsyncSession] = field(init=False)
    answer_sessionmaker: async_sessionmaker[AsyncSession] = field(init=False)

    def __post_init__(self) -> None:
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self.autocommit_sessionmaker = _autocommit_sessions(self.engine)
        self.answer_sessionmaker = _autocommit_sessions(
            self.answer_engine or self.engine
        )

    @asynccontextmanager
    async def user_transaction(
        self, claims: Mapping[str, Any]
    ) -> AsyncIterator[AsyncSession]:
        """A transaction as the ``authenticated`` role with these JWT claims.

        Commits when the block ends, rolls back when it raises. One round trip
        starts it: ``BEGIN`` and the two ``set_config`` reach the server as one
        message (as PostgREST does), on a connection SQLAlchemy drives in
        autocommit mode; the block's statements run inside that transaction.
        """
        script = _BEGIN_AS_USER.format(claims=sql_literal(json.dumps(claims)))
        with _busy_when_no_connection_frees_up():
            session, driver = await self._begin(script)
        try:
            yield session
            await session.flush()
            await driver.execute("commit")
        finally:
            try:
                if driver.is_in_transaction():  # the block raised or was cancelled
                    await _roll_back(session, driver)
            finally:
                await _close(session)

    async def _begin(self, script: str) -> tuple[AsyncSession, Any]:
        """A session whose connection has begun a transaction with ``script``.

        A pooled connection can be dead (the database restarted since it was
        last used): then the pool is replaced, and one retry connects afresh.
        Nothing ran on the dead connection, so retrying is safe.
        """
        try:
            return await self._session_after(script)
        except DEAD_CONNECTION_ERRORS:
            await self.engine.dispose(close=False)
            return await self._session_after(script)

    async def _session_after(self, script: str) -> tuple[AsyncSession, Any]:
        """A new session whose connection has run ``script`` (asyncpg's own)."""
        session = self.autocommit_sessionmaker()
        try:
            driver = await idle_driver_connection(session)
            await driver.execute(script)
        except BaseException:
            await session.close()
            raise
        return session, driver

    async def user_read(
        self, claims: Mapping[str, Any], query: str, *args: Any
    ) -> list[Any]:
        """The rows (asyncpg records) of one read-only ``query`` as the user.

        Row-level security applies as in :meth:`user_transaction`, at a
        fraction of its cost for a read that needs no session: on a pooled
        connection driven by asyncpg alone, ``BEGIN READ ONLY`` with the role
        and claims (one message), the query (prepared once per connection by
        asyncpg, ``$1``-style parameters ``args``), ``COMMIT``. The role and
        claims are local to that transaction: they end with it, and a read
        that raises or is cancelled is rolled back before the connection goes
        back to the pool (or the connection is dropped), so they never reach
        its next user. A dead pooled connection is replaced and the read
        retried once (it wrote nothing).

        Raises:
            ServerBusyError: No pooled connection freed up in DB_POOL_TIMEOUT_S.
            ServiceUnavailableError: The database could not serve the read now
                (connection lost, a timeout, the server shutting down).
        """
        script = _BEGIN_READ_AS_USER.format(claims=sql_literal(json.dumps(claims)))
        with (
            _busy_when_no_connection_frees_up(),
            _unavailable_on_failure(),
        ):
            try:
                return await self._read(script, query, args)
            except DEAD_CONNECTION_ERRORS:
                await self.engine.dispose(close=False)
                return await self._read(script, query, args)

    async def _read(self, script: str, query: str, args: Sequence[Any]) -> list[Any]:
        """Run ``query`` in a transaction ``script`` begins, on a pooled connection."""
        pooled = await self.engine.raw_connection()
        driver: Any = pooled.driver_connection
        try:
            if driver.is_in_transaction():  # left by a cancelled request
                await driver.execute("rollback")
            await driver.execute(script)
            rows: list[Any] = await driver.fetch(query, *args)
            await driver.execute("commit")
        finally:
            try:
                if not driver.is_closed() and driver.is_in_transaction():
                    await driver.execute("rollback")
            except DEAD_CONNECTION_ERRORS:
                await greenlet_spawn(pooled.invalidate)
            finally:
                pooled.close()  # back to the pool: no I/O (SQLAlchemy began nothing)
        return rows

    @asynccontextmanager
    async def service_transaction(self) -> AsyncIterator[AsyncSession]:
        """A transaction as the connecting role: bypasses row-level security."""
        with _busy_when_no_connection_frees_up():
            async with self.sessionmaker() as session, session.begin():
                yield session

    @asynccontextmanager
    async def service_statement(self) -> AsyncIterator[AsyncSession]:
        """A session for single statements, each committed on its own.

        As the connecting role (bypasses row-level security), like
        :meth:`service_transaction`, in one round trip per statement where a
        transaction costs three: for a write that needs no transaction around
        it (taking a rate-limit token).
        """
        with _busy_when_no_connection_frees_up():
            async with self.autocommit_sessionmaker() as session:
                yield session

    @asynccontextmanager
    async def answer_statement(self) -> AsyncIterator[AsyncSession]:
        """Like :meth:`service_statement`, for saving an AI answer.

        On ``answer_engine``'s connections when there is one: an answer its
        user has already read is saved without waiting behind the new turns
        queued for the pool.
        """
        with _busy_when_no_connection_frees_up():
            session = await self._live_answer_session()
        try:
            yield session
        finally:
            await session.close()

    async def _live_answer_session(self) -> AsyncSession:
        """A session on a live answer connection.

        These connections sit idle while the database may restart, and no
        turn's error invalidates them (the turns' pool is another): a
        connection the driver knows is closed replaces the pool first.
        """
        session = self.answer_sessionmaker()
        try:
            connection = await session.connection()
            driver: Any = (await connection.get_raw_connection()).driver_connection
            if not driver.is_closed():
                return session
        except BaseException:
            await session.close()
            raise
        await session.close()
        await (self.answer_engine or self.engine).dispose(close=False)
        return self.answer_sessionmaker()

    async def ping(self) -> None:
        """Run ``select 1``; raises when the database cannot be reached."""
        async with self.engine.connect() as conn:
            await conn.execute(text("select 1"))

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        if self.answer_engine is not None:
            await self.answer_engine.dispose()


def _autocommit_sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(
        engine.execution_options(isolation_level="AUTOCOMMIT"),
        expire_on_commit=False,
    )


def session_settings(settings: Settings) -> dict[str, str]:
    """The server settings every connection starts with.

    The statement timeout bounds any query; the ``hnsw.*`` settings are
    pgvector's search parameters (placeholders until the extension loads in
    the session), so a search sets nothing per transaction: ``iterative_scan``
    keeps walking the index when row-level security or the filters drop
    candidates, so a filtered search still finds ``k`` rows.

    ``random_page_cost`` 1.1 (not 4.0) tells the planner what is true of a
    Supabase database: SSD storage and a cached working set. At 4.0 the
    planner searches a knowledge base of a few thousand chunks by reading
    every vector from TOAST and sorting, instead of walking the HNSW index.

    ``plan_cache_mode=force_generic_plan``: the driver prepares every
    statement, so a generic plan spares planning the hybrid search on every
    call; none of them needs a plan for its particular values (the full-text
    function that does sets its own mode).
    """
    return {
        "application_name": "rag-chat-backend",
        "standard_conforming_strings": "on",
        "statement_timeout": str(settings.db_statement_timeout_ms),
        "random_page_cost": "1.1",
        "plan_cache_mode": "force_generic_plan",
        "hnsw.ef_search": str(settings.hnsw_ef_search),
        "hnsw.iterative_scan": "relaxed_order",
    }


def session_setup_script(settings: Settings) -> str:
    """The ``set`` statements a new connection runs: :func:`session_settings`.

    Sent once per connection, as one message, instead of as startup
    parameters: Supabase's session pooler (Supavisor, port 5432, the path the
    README recommends) opens its server connection with a startup message of
    its own, carrying only the user, the database, ``application_name`` and
    ``search_path``, so it drops every other startup parameter. ``set`` reaches
    the server through any pooler in session mode and on a direct connection.
    """
    return "".join(
        f"set {name} = {sql_literal(value)};"
        for name, value in session_settings(settings).items()
        if name != "application_name"
    )


def encode_vector(value: Sequence[float] | str) -> bytes:
    """A pgvector ``vector`` in its binary wire format.

    Takes a sequence of floats (an embedding as the providers return it) or
    pgvector's text form (``[0.1,0.2]``), which callers may still pass.
    """
    if isinstance(value, str):
        return bytes(Vector.from_text(value).to_binary())
    count = len(value)
    return struct.pack(f">HH{count}f", count, 0, *value)


def decode_vector(data: bytes) -> Any:
    """A ``vector`` read in binary: a float32 numpy array, as pgvector's types give."""
    return Vector._from_db_binary(data)


async def register_vector_codec(connection: Any) -> None:
    """Send and read ``extensions.vector`` values in binary on this connection.

    Without a codec asyncpg sends an embedding as an array of floats, checking
    each element's type on the way, and the server casts it; packed here in
    pgvector's binary format, it needs neither. A database without pgvector
    yet (before its migrations) keeps the default.
    """
    try:
        await connection.set_type_codec(
            "vector",
            schema="extensions",
            encoder=encode_vector,
            decoder=decode_vector,
            format="binary",
        )
    except ValueError:  # "unknown type": the extension is not installed yet
        logger.debug("no extensions.vector type: vectors use the text format")


def create_engine(
    url: str, settings: Settings, *, pool_size: int | None = None
) -> AsyncEngine:
    """An async engine (asyncpg) with the pool, timeouts and session settings.

    asyncpg because much of a request's CPU goes to the driver and SQLAlchemy,
    and asyncpg is the lighter of the two async drivers. It prepares and caches
    every statement; behind a pooler in transaction mode (Supabase's port 6543)
    set ``prepared_statement_cache_size=0`` in ``DATABASE_URL`` (the backend
    needs port 5432 anyway, for ``LISTEN``). ``pool_size`` defaults to
    ``DB_POOL_SIZE``.
    """
    engine = create_async_engine(
        async_url(url),
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_s,
        connect_args={
            "timeout": settings.db_connect_timeout_s,
            # The driver gives up on a statement after this (TimeoutError, a
            # 503): the server's statement_timeout needs a server that answers.
            "command_timeout": settings.db_command_timeout_s,
            # The rest of session_settings is set on connect (poolers drop it).
            "server_settings": {"application_name": "rag-chat-backend"},
        },
    )
    setup = session_setup_script(settings)

    async def prepare(connection: Any) -> None:
        await connection.execute(setup)
        await register_vector_codec(connection)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.run_async(prepare)

    return engine


def prepare_embedded(settings: Settings) -> EmbeddedServer:
    """Start the embedded server, make it Supabase-like, apply migrations.

    A brand-new database also gets ``supabase/seed.sql`` (the admins' personas),
    as ``supabase start`` seeds a new local project.
    """
    server = start_embedded_postgres(settings.embedded_db_path)
    apply_compat_layer(server.conninfo())
    applied = apply_migrations(server.conninfo())
    if applied:
        logger.info("applied migrations", extra={"versions": applied})
    if applied and len(applied) == len(discover()):
        apply_seed(server.conninfo())
        logger.info("new database seeded from supabase/seed.sql")
    return server


async def open_database(settings: Settings) -> Database:
    """Connect to ``DATABASE_URL``, or to the embedded server when it is unset."""
    server = None
    url = settings.database_url
    if url:
        logger.info("using DATABASE_URL")
    else:
        server = await asyncio.to_thread(prepare_embedded, settings)
        url = server.url()
    return Database(
        engine=create_engine(url, settings),
        embedded=server,
        answer_engine=create_engine(
            url, settings, pool_size=settings.db_answer_pool_size
        ),
    )
