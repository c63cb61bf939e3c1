"""AnswerWriter on the test database: batches, failures, cancellation, closing."""

import asyncio
import uuid

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from src.gateway.message_gateway import Answer
from src.infra.answer_writer import AnswerWriter
from src.infra.db_client import Database, create_engine
from src.settings import Settings
from tests.factories import create_room

UNREACHABLE_URL = "postgresql://postgres@127.0.0.1:1/postgres"


@pytest.fixture
def writer(answer_writer: AnswerWriter) -> AnswerWriter:
    return answer_writer


@pytest.fixture
async def room(connection: AsyncConnection, user: uuid.UUID) -> int:
    return await create_room(connection, user)


def answer(room: int, content: str) -> Answer:
    return Answer(
        chat_room_id=room,
        content=content,
        sender_virtual_user_id=None,
        metadata={"said": content},
    )


async def saved(connection: AsyncConnection, room: int) -> list[tuple[object, ...]]:
    rows = await connection.execute(
        text(
            "select id, role, content, status, metadata->>'said' from messages "
            "where chat_room_id = :room order by id"
        ),
        {"room": room},
    )
    return [tuple(row) for row in rows]


async def test_answers_ready_together_are_saved_by_one_statement(
    writer: AnswerWriter, connection: AsyncConnection, room: int
) -> None:
    contents = [f"answer {n}" for n in range(3)]

    ids = await asyncio.gather(*(writer.save(answer(room, c)) for c in contents))

    assert writer.statements == 1
    assert await saved(connection, room) == [
        (message_id, "assistant", content, "complete", content)
        for message_id, content in zip(ids, contents, strict=True)
    ]


async def test_batches_stay_small_until_the_queue_is_long(
    writer: AnswerWriter, connection: AsyncConnection, room: int
) -> None:
    contents = [f"answer {n}" for n in range(20)]

    ids = await asyncio.gather(*(writer.save(answer(room, c)) for c in contents))

    assert writer.statements == 4  # half the queue each time: 10, 5, 3, 2
    assert [(row[0], row[2]) for row in await saved(connection, room)] == list(
        zip(ids, contents, strict=True)
    )


async def test_an_answer_alone_is_saved_at_once(
    writer: AnswerWriter, connection: AsyncConnection, room: int
) -> None:
    first = await writer.save(answer(room, "one"))
    second = await writer.save(answer(room, "two"))

    assert writer.statements == 2
    assert [row[0] for row in await saved(connection, room)] == [first, second]


async def test_an_answer_refused_for_its_data_fails_alone(
    writer: AnswerWriter, connection: AsyncConnection, room: int
) -> None:
    no_such_room = 2**62

    results = await asyncio.gather(
        writer.save(answer(room, "kept")),
        writer.save(answer(no_such_room, "refused")),
        writer.save(answer(room, "kept too")),
        return_exceptions=True,
    )

    assert isinstance(results[1], asyncpg.ForeignKeyViolationError)
    assert [(row[0], row[2]) for row in await saved(connection, room)] == [
        (results[0], "kept"),
        (results[2], "kept too"),
    ]
    assert writer.statements == 4  # the batch, then each answer alone


async def test_after_a_refused_answer_the_next_one_is_saved(
    writer: AnswerWriter, connection: AsyncConnection, room: int
) -> None:
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await writer.save(answer(2**62, "refused"))

    saved_id = await writer.save(answer(room, "next"))

    assert [(row[0], row[2]) for row in await saved(connection, room)] == [
        (saved_id, "next")
    ]


async def test_the_answer_of_a_turn_cancelled_while_queued_is_not_written(
    writer: AnswerWriter, connection: AsyncConnection, room: int
) -> None:
    kept = asyncio.create_task(writer.save(answer(room, "kept")))
    dropped = asyncio.create_task(writer.save(answer(room, "dropped")))
    await asyncio.sleep(0)  # both queued; the writer has not run yet
    dropped.cancel()

    kept_id = await kept

    with pytest.raises(asyncio.CancelledError):
        await dropped
    assert [(row[0], row[2]) for row in await saved(connection, room)] == [
        (kept_id, "kept")
    ]


async def test_closing_saves_what_is_queued_then_refuses(
    database: Database, connection: AsyncConnection, room: int
) -> None:
    writer = AnswerWriter(database)
    last = asyncio.create_task(writer.save(answer(room, "last")))
    await asyncio.sleep(0)

    await writer.aclose()

    assert [row[0] for row in await saved(connection, room)] == [await last]
    with pytest.raises(RuntimeError, match="closed"):
        await writer.save(answer(room, "too late"))


async def test_an_unreachable_database_fails_the_waiting_turns_and_the_next(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_engine(UNREACHABLE_URL, settings)
    writer = AnswerWriter(Database(engine=engine))
    try:
        first = await asyncio.gather(
            *(writer.save(answer(1, str(n))) for n in range(8)),
            return_exceptions=True,
        )
        later = await asyncio.gather(
            writer.save(answer(1, "c")), return_exceptions=True
        )
    finally:
        await writer.aclose()
        await engine.dispose()

    assert all(isinstance(result, OSError) for result in [*first, *later])
    assert writer.statements == 0
    # All eight at once, after one attempt to connect: not a timeout per batch.
    failures = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert "8 requests not served" in failures[0]
