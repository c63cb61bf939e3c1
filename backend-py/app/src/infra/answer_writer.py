"""AnswerWriter: chat answers saved many to a statement when many are ready.

A chat turn ends by saving the AI's answer: an insert as the service, committed
on its own (members may not write AI messages, and the prepared turn already
proved the caller's membership). With one statement per answer, saving
answers took 13% of the API's CPU and 10% of Postgres's per chat turn on the
load benchmark (50 users).

One worker writes (a :class:`StatementBatcher`): it saves the queued answers
with one insert (``MessageGateway.create_answers``), then the next ones on the
same connection, and gives the connection back when the queue is empty. It is
served at the connection gate before new turns: it finishes turns already
begun. A lone answer is saved at once.
"""

from sqlalchemy.ext.asyncio import AsyncSession

from src.gateway.message_gateway import Answer, MessageGateway
from src.infra.db_client import Database
from src.infra.statement_batcher import StatementBatcher


class AnswerWriter(StatementBatcher[Answer, int]):
    """Saves chat answers for the turns waiting on them, in batches."""

    def __init__(self, database: Database) -> None:
        """Write through ``database`` (one connection at a time, urgent)."""
        super().__init__(database, _insert, name="answer writer", urgent=True)

    async def save(self, answer: Answer) -> int:
        """Save ``answer`` and return its message id.

        Raises:
            RuntimeError: The writer is closed.
            asyncpg.PostgresError: The database refused the answer, or could
                not be reached (the app's handlers make these 5xx).
        """
        return await self.submit(answer)


async def _insert(session: AsyncSession, answers: list[Answer]) -> list[int]:
    return await MessageGateway(session).create_answers(answers)
