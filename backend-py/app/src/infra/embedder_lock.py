"""One process embeds documents per database at a time: an advisory lock.

The embedding model uses every core. Two processes embedding at once (the
server's worker and ``make ingest``) each get half the machine and fight over
its caches, so together they go slower than either alone. Whoever holds this
lock indexes; the others leave the queue to it (the server's worker skips its
rounds, ``make ingest`` waits for its documents). The lock is a session-level
``pg_try_advisory_lock`` on a dedicated connection: it is held as long as that
connection lives, and goes with it when the process dies.
"""

import logging

import psycopg

logger = logging.getLogger(__name__)

EMBEDDER_LOCK_KEY = 0x5241_4743_454D_4244  # "RAGCEMBD"
"""The advisory lock's key (one per database)."""


class EmbedderLock:
    """The right to embed documents, held on a connection of its own."""

    def __init__(self, url: str, *, key: int = EMBEDDER_LOCK_KEY) -> None:
        """Remember where to take the lock (nothing is opened yet).

        Args:
            url: A libpq URL of the database (a direct connection: a session
                lock does not survive a transaction pooler).
            key: The lock's key.
        """
        self._url = url
        self._key = key
        self._connection: psycopg.AsyncConnection | None = None

    @property
    def held(self) -> bool:
        """Whether this process holds the lock (as of the last check)."""
        return self._connection is not None

    async def try_acquire(self) -> bool:
        """Hold the lock if no other process does; True when held.

        A lock already held is checked first: if its connection was lost, so
        was the lock, and it is taken again if free.
        """
        if self._connection is not None:
            try:
                await self._connection.execute("select 1")
            except psycopg.Error:
                logger.warning("embedder lock connection lost")
                await self.release()
            else:
                return True
        connection = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
        cursor = await connection.execute(
            "select pg_try_advisory_lock(%s)", (self._key,)
        )
        row = await cursor.fetchone()
        if row is not None and row[0]:
            self._connection = connection
            return True
        await connection.close()
        return False

    async def release(self) -> None:
        """Give the lock up (closing its connection ends the session's lock)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()
