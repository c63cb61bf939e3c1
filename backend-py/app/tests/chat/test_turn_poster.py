"""TurnPoster (and its StatementBatcher) on the test database."""

import asyncio
import uuid

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from src.infra.db_client import Database
from src.infra.logging import request_id_var
from src.infra.statement_batcher import StatementBatcher
from src.infra.turn_poster import TurnPoster
from tests.chat.conftest import user_turn
from tests.factories import create_room, create_user


async def messages(connection: AsyncConnection) -> list[tuple[object, ...]]:
    rows = await connection.execute(
        text("select id, chat_room_id, content, sender_user_id from messages")
    )
    return sorted(tuple(row) for row in rows)


async def test_turns_waiting_together_are_posted_by_one_statement(
    turn_poster: TurnPoster, connection: AsyncConnection, user: uuid.UUID
) -> None:
    other = await create_user(connection)
    mine = await create_room(connection, user)
    theirs = await create_room(connection, other)

    posted = await asyncio.gather(
        turn_poster.post(user_turn(user, mine, "one")),
        turn_poster.post(user_turn(other, theirs, "two")),
        turn_poster.post(user_turn(other, mine, "not a member")),
    )

    assert turn_poster.statements == 1
    assert posted[2] is None
    assert posted[0] is not None
    assert posted[1] is not None
    assert await messages(connection) == [
        (posted[0].id, mine, "one", user),
        (posted[1].id, theirs, "two", other),
    ]


async def test_a_turn_refused_for_its_data_fails_alone(
    turn_poster: TurnPoster, connection: AsyncConnection, user: uuid.UUID
) -> None:
    room = await create_room(connection, user)

    results = await asyncio.gather(
        turn_poster.post(user_turn(user, room, "kept")),
        turn_poster.post(user_turn(user, room, "no NUL in text\x00")),
        turn_poster.post(user_turn(user, room, "kept too")),
        return_exceptions=True,
    )

    assert isinstance(results[1], asyncpg.DataError)
    kept = [r.id for r in results if not isinstance(r, BaseException) and r]
    assert [row[2] for row in await messages(connection)] == ["kept", "kept too"]
    assert [row[0] for row in await messages(connection)] == kept
    assert turn_poster.statements == 4  # the batch, then each turn alone


async def test_a_turn_cancelled_while_queued_is_not_posted(
    turn_poster: TurnPoster, connection: AsyncConnection, user: uuid.UUID
) -> None:
    room = await create_room(connection, user)
    kept = asyncio.create_task(turn_poster.post(user_turn(user, room, "kept")))
    dropped = asyncio.create_task(turn_poster.post(user_turn(user, room, "dropped")))
    await asyncio.sleep(0)  # both queued; no worker has taken them yet
    dropped.cancel()

    posted = await kept

    with pytest.raises(asyncio.CancelledError):
        await dropped
    assert posted is not None
    assert [row[:3] for row in await messages(connection)] == [
        (posted.id, room, "kept")
    ]


async def test_closing_posts_what_is_queued_then_refuses(
    turn_poster: TurnPoster, connection: AsyncConnection, user: uuid.UUID
) -> None:
    room = await create_room(connection, user)
    last = asyncio.create_task(turn_poster.post(user_turn(user, room, "last")))
    await asyncio.sleep(0)

    await turn_poster.aclose()

    posted = await last
    assert posted is not None
    assert [row[0] for row in await messages(connection)] == [posted.id]
    with pytest.raises(RuntimeError, match="closed"):
        await turn_poster.post(user_turn(user, room, "too late"))


async def test_at_most_the_workers_run_batches_at_once(engine: AsyncEngine) -> None:
    # On the engine's own pool (autocommit connections, nothing written), so
    # that batches really run side by side.
    running = 0
    most = 0
    sizes: list[int] = []

    async def statement(session: AsyncSession, items: list[int]) -> list[int]:
        nonlocal running, most
        running += 1
        most = max(most, running)
        sizes.append(len(items))
        await asyncio.sleep(0.05)  # a slow statement: the other worker joins in
        running -= 1
        return [item * 2 for item in items]

    batcher = StatementBatcher(
        Database(engine=engine), statement, name="doubler", workers=2
    )
    try:
        results = await asyncio.gather(*(batcher.submit(n) for n in range(12)))
    finally:
        await batcher.aclose()

    assert results == [n * 2 for n in range(12)]
    assert most == 2
    assert sum(sizes) == 12
    assert batcher.statements == len(sizes) < 12


async def test_batches_run_outside_the_context_of_the_request_that_started_them(
    engine: AsyncEngine,
) -> None:
    # The worker serves many requests: its logs must not carry the first one's id.
    seen: list[str | None] = []

    async def statement(session: AsyncSession, items: list[int]) -> list[int]:
        seen.append(request_id_var.get())
        return items

    batcher = StatementBatcher(Database(engine=engine), statement, name="echo")
    request_id_var.set("first-request")
    try:
        assert await batcher.submit(1) == 1
    finally:
        await batcher.aclose()

    assert seen == [None]
