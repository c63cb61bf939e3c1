"""StatementBatcher: the statements of many waiting requests run as one.

A chat turn makes two writes, each committed on its own: the user's message
with its retrieval (``post_chat_turns``) and the AI's answer. Under load many
turns are at the same step at once, and one statement each meant, for each of
them, a turn at the connection gate, a round trip, a commit and a wake-up of
the database and of the waiting request. A batcher runs the requests that are
waiting together instead, with one statement.

A request queues its item and waits for its result. Workers (at most
``workers`` at a time, started when items arrive) each take a turn at the
gate, then up to three queued items (half the queue when it is longer) and
run them with one statement. Nothing waits to fill a batch: an item that
finds a worker free runs at once, alone. Batches stay small because the
requests of one batch are answered together: on the load benchmark, batches
of everything queued made p99 10 ms worse than batches of three.

Failures stay with the items they concern:

* a batch refused for its data (say, a room deleted since its turn began) is
  run again one item per statement, so only the item at fault fails;
* any other error fails the items of that statement with the database's error
  (a 5xx for their requests, as when each ran its own statement); the
  connection is given back (dropped by the pool when broken), and the next
  items take a turn at the gate again;
* no connection at all (the database is down, or the gate's timeout passed)
  fails every queued item at once: they would all wait for the same outage,
  one connection timeout per batch;
* an item whose request was cancelled before it was sent is not run.

:meth:`StatementBatcher.aclose` (at shutdown) runs what is queued, then stops.
"""

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Generic, TypeVar

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from src.infra.db_client import Database

logger = logging.getLogger(__name__)

MAX_BATCH = 100
"""Most items in one statement."""

SMALL_BATCH = 3
"""Items per statement while the queue is short (see ``_take``)."""

DATA_ERRORS = (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError)
"""Errors of one item's data: its batch is run again one item at a time."""

Item = TypeVar("Item")
Result = TypeVar("Result")
BatchStatement = Callable[[AsyncSession, list[Item]], Awaitable[Sequence[Result]]]
"""Runs a batch with one statement; one result per item, in the same order."""


Batch = list[tuple[Item, asyncio.Future[Result]]]
"""Queued items with the futures their requests wait on."""


class StatementBatcher(Generic[Item, Result]):
    """Runs the items of waiting requests in batches, one statement each."""

    def __init__(
        self,
        database: Database,
        statement: BatchStatement[Item, Result],
        *,
        name: str,
        workers: int = 1,
        urgent: bool = False,
    ) -> None:
        """Run batches with ``statement`` on connections from ``database``.

        Args:
            database: Where the statements run (a connection from its gate).
            statement: Runs one batch on a session, in autocommit.
            name: What the batcher does, for errors and logs.
            workers: How many batches may run at once, each on a connection.
            urgent: Served at the gate before new work (it finishes work), and
                the worker keeps its connection while items keep coming;
                otherwise each batch takes its own turn at the gate.
        """
        self._database = database
        self._statement = statement
        self._name = name
        self._workers = workers
        self._urgent = urgent
        self._queue: Batch[Item, Result] = []
        self._active = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.statements = 0
        """Batch statements run so far."""

    async def submit(self, item: Item) -> Result:
        """Run ``item`` (in a batch) and return its result.

        Raises:
            RuntimeError: The batcher is closed.
            asyncpg.PostgresError: The database refused the item, or could not
                be reached (the app's handlers make these 5xx).
        """
        if self._closed:
            raise RuntimeError(f"the {self._name} is closed")
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._active < self._workers:
            self._active += 1
            # In a context of its own: it works for many requests, so it must
            # not log with (or trace into) the first one's request id.
            task = asyncio.create_task(
                self._work(), name=self._name, context=contextvars.Context()
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def aclose(self) -> None:
        """Run what is queued, then stop; later submissions raise."""
        self._closed = True
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def _work(self) -> None:
        try:
            while self._queue:
                await self._run_queue()
        finally:  # no await in between: a new item always finds a worker
            self._active -= 1

    def _connection(self) -> AbstractAsyncContextManager[AsyncSession]:
        if self._urgent:
            return self._database.service_statement()
        return self._database.statement()

    async def _run_queue(self) -> None:
        """Run batches on one connection (while the queue lasts, when urgent)."""
        batch: Batch[Item, Result] | None = None
        try:
            async with self._connection() as session:
                batch = self._take()
                while batch:
                    await self._run(session, batch)
                    batch = self._take() if self._urgent else []
        except DATA_ERRORS as exc:
            await self._run_each(batch or [], exc)
        except Exception as exc:  # noqa: BLE001 - given to the requests it concerns
            if batch is None:  # no connection: every waiting request learns now
                batch, self._queue = self._queue, []
            _fail(self._name, batch, exc)

    async def _run(self, session: AsyncSession, batch: Batch[Item, Result]) -> None:
        """Run ``batch`` with one statement and hand out the results."""
        self.statements += 1
        results = await self._statement(session, [item for item, _ in batch])
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():  # a request cancelled since waits no more
                future.set_result(result)

    async def _run_each(self, batch: Batch[Item, Result], exc: Exception) -> None:
        """Run a batch refused for its data one item per statement.

        So that only the item at fault fails.
        """
        if len(batch) <= 1:
            _fail(self._name, batch, exc)
            return
        for queued in batch:
            try:
                async with self._connection() as session:
                    await self._run(session, [queued])
            except Exception as error:  # noqa: BLE001 - given to its request
                _fail(self._name, [queued], error)

    def _take(self) -> Batch[Item, Result]:
        """The next batch: queued items whose request still waits.

        Small while the queue is short, half of it when it is not: the
        requests of one batch are answered together and their users' next
        requests arrive together, so big batches widen the tail, but only
        bigger batches keep up when items come faster than statements.
        """
        size = min(MAX_BATCH, max(SMALL_BATCH, (len(self._queue) + 1) // 2))
        batch = [queued for queued in self._queue[:size] if not queued[1].done()]
        del self._queue[:size]
        return batch


def _fail(name: str, batch: Batch[Item, Result], exc: Exception) -> None:
    logger.warning(
        "%s: statement failed, %d requests not served: %r", name, len(batch), exc
    )
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
