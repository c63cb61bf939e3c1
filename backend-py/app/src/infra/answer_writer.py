"""AnswerWriter: chat answers saved many to a statement when many are ready.

A chat turn ends by saving the AI's answer: an insert as the service, committed
on its own (members may not write AI messages, and the prepared turn already
proved the caller's membership). Under load many turns finish at once, and one
statement each meant, for each answer, a turn at the connection gate, a round
trip, a commit and a wake-up of the waiting request: on the load benchmark (50
users) 13% of the API's CPU and 10% of Postgres's per chat turn.

One task writes. A turn queues its answer and waits for the id; the task takes
up to three queued answers (half the queue when it is longer), saves them with
one insert, then the next ones on the same connection, and gives the
connection back when the queue is empty. Nothing waits to fill a batch: an
answer that finds the queue empty is saved at once, as before. Batches stay
small because the turns of one batch are answered together: on the load
benchmark, batches of everything queued (about seven) made p99 10 ms worse
than batches of three, at the same throughput.

Failures stay with the answers they concern:

* a batch refused for its data (a room deleted since its turn began) is saved
  again one answer at a time, so only the answer at fault fails;
* any other error fails the answers of that statement with the database's
  error (a 5xx for their turns, as when each turn saved its own); the
  connection is given back (dropped by the pool when broken), and the next
  answers take a turn at the gate again;
* an answer whose turn was cancelled before it was sent is not written: an
  interrupted turn stores no answer.

At shutdown :meth:`AnswerWriter.aclose` saves what is queued, then stops.
"""

import asyncio
import logging

import asyncpg

from src.gateway.message_gateway import Answer, MessageGateway
from src.infra.db_client import Database

logger = logging.getLogger(__name__)

MAX_BATCH = 100
"""Most answers in one statement."""

SMALL_BATCH = 3
"""Answers per statement while the queue is short (see ``_take``)."""

DATA_ERRORS = (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError)
"""Errors of one row's data: its batch is saved again one answer at a time."""

_Queued = tuple[Answer, "asyncio.Future[int]"]


class AnswerWriter:
    """Saves chat answers for the turns waiting on them, in batches."""

    def __init__(self, database: Database) -> None:
        """Write through ``database`` (one connection at a time, from its gate)."""
        self._database = database
        self._queue: list[_Queued] = []
        self._queued = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.statements = 0
        """Inserts run so far (each saves one batch)."""

    async def save(self, answer: Answer) -> int:
        """Save ``answer`` and return its message id.

        Raises:
            RuntimeError: The writer is closed.
            asyncpg.PostgresError: The database refused the answer, or could
                not be reached (the app's handlers make these 5xx).
        """
        if self._closed:
            raise RuntimeError("the answer writer is closed")
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.append((answer, future))
        self._queued.set()
        if self._task is None or self._task.done():  # first use, or it crashed
            self._task = asyncio.create_task(self._run(), name="answer-writer")
        return await future

    async def aclose(self) -> None:
        """Save what is queued, then stop; later saves raise."""
        self._closed = True
        self._queued.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while self._queue or not self._closed:
            if not self._queue:
                self._queued.clear()
                await self._queued.wait()
                continue
            await self._write_queue()

    async def _write_queue(self) -> None:
        """Save batches on one connection until the queue is empty."""
        batch = self._take()
        try:
            async with self._database.service_statement() as session:
                messages = MessageGateway(session)
                while batch:
                    await self._write(messages, batch)
                    batch = self._take()
        except DATA_ERRORS as exc:
            await self._write_each(batch, exc)
        except Exception as exc:  # noqa: BLE001 - given to the turns it concerns
            _fail(batch, exc)  # no connection, or it broke: a fresh one next

    async def _write(self, messages: MessageGateway, batch: list[_Queued]) -> None:
        """Save ``batch`` with one insert and hand out the ids."""
        self.statements += 1
        ids = await messages.create_answers([answer for answer, _ in batch])
        for (_, future), message_id in zip(batch, ids, strict=True):
            _resolve(future, message_id)

    async def _write_each(self, batch: list[_Queued], exc: Exception) -> None:
        """Save a batch refused for its data one answer at a time.

        Each in its own statement, so that only the answer at fault fails.
        """
        if len(batch) == 1:
            _fail(batch, exc)
            return
        for queued in batch:
            try:
                async with self._database.service_statement() as session:
                    await self._write(MessageGateway(session), [queued])
            except Exception as error:  # noqa: BLE001 - given to its turn
                _fail([queued], error)

    def _take(self) -> list[_Queued]:
        """The next batch: queued answers whose turn still waits.

        Small while the queue is short, half of it when it is not: the turns
        of one batch are answered together and their users' next messages
        queue together, so big batches widen the tail, but only bigger
        batches keep up when answers come faster than statements.
        """
        size = min(MAX_BATCH, max(SMALL_BATCH, (len(self._queue) + 1) // 2))
        batch = [queued for queued in self._queue[:size] if not queued[1].done()]
        del self._queue[:size]
        return batch


def _resolve(future: "asyncio.Future[int]", message_id: int) -> None:
    if not future.done():  # a turn cancelled since waits no more
        future.set_result(message_id)


def _fail(batch: list[_Queued], exc: Exception) -> None:
    logger.warning(
        "answer writer: statement failed, %d answers not saved: %r", len(batch), exc
    )
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
