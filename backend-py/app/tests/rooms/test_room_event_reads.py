"""A room stream's reads, in process: each under the member's own row-level
security, and a read the database cannot serve does not break the response.

The test's transaction is never committed, so Postgres sends no notification:
each test hands the process's hub the notification Postgres would send (its
listener callback, as the ``LISTEN`` connection calls it) once the stream is
subscribed. Every read goes to the test's real database.
"""

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from src.controller.chat_room_controller import room_events_use_case
from src.controller.dependencies import (
    CurrentUserDep,
    DatabaseDep,
    RoomEventsDep,
    SettingsDep,
)
from src.domain.errors import ServerBusyError, ServiceUnavailableError
from src.gateway.message_gateway import MessageReader
from src.infra.db_client import Database
from src.infra.room_events import CHANNEL, RoomEventHub
from src.usecase.room_events_usecase import RECONNECT_AFTER_MS, RoomEventsUseCase
from tests.support.sse import sse_events

GUARD_S = 30.0

pytestmark = pytest.mark.usefixtures("admin_persona")


def hub_of(app: FastAPI) -> RoomEventHub:
    hub: RoomEventHub = app.state.room_events
    return hub


async def subscribed(hub: RoomEventHub, streams: int) -> None:
    """Wait until ``streams`` streams listen (bounded, so a bug fails, not hangs)."""
    async with asyncio.timeout(GUARD_S):
        while hub.open_streams() < streams:  # noqa: ASYNC110 - no event to await
            await asyncio.sleep(0.01)


def notify(hub: RoomEventHub, **note: Any) -> None:
    """What Postgres's ``NOTIFY room_events`` hands the listening connection."""
    hub._on_notification(None, 0, CHANNEL, json.dumps(note))


async def room_with_message(
    owner: httpx.AsyncClient, *members: uuid.UUID
) -> tuple[int, int]:
    created = await owner.post("/api/chat-rooms", json={"title": "Team"})
    assert created.status_code == 201, created.text
    room = int(created.json()["id"])
    quiet = await owner.patch(f"/api/chat-rooms/{room}", json={"ai_replies": "mention"})
    assert quiet.status_code == 200, quiet.text  # no persona answers here
    for member in members:
        added = await owner.post(
            f"/api/chat-rooms/{room}/members", json={"user_id": str(member)}
        )
        assert added.status_code == 201, added.text
    posted = await owner.post(
        f"/api/chat-rooms/{room}/messages", json={"content": "hello all"}
    )
    assert posted.status_code == 201, posted.text
    return room, int(posted.json()["id"])


def failing_once(
    read: Callable[..., Awaitable[Sequence[Any]]], *, nth: int, error: Exception
) -> Any:
    """The member's reads, the ``nth`` failing with ``error``.

    A stream's first read is its replay (and membership check), the second
    the first live message.
    """
    calls = 0

    async def read_or_fail(query: str, *args: Any) -> Sequence[Any]:
        nonlocal calls
        calls += 1
        if calls == nth:
            raise error
        return await read(query, *args)

    return read_or_fail


def reads_failing(nth: int, error: Exception) -> Any:
    """The events use case whose ``nth`` read fails with ``error``."""

    def use_case_of(
        user: CurrentUserDep,
        database: DatabaseDep,
        events: RoomEventsDep,
        settings: SettingsDep,
    ) -> RoomEventsUseCase:
        use_case = room_events_use_case(user, database, events, settings)
        real = partial(database.user_read, user.claims)
        use_case.messages = MessageReader(failing_once(real, nth=nth, error=error))
        return use_case

    return use_case_of


async def test_a_read_the_database_cannot_serve_ends_the_stream_with_a_reconnect(
    app: FastAPI,
    auth_client: httpx.AsyncClient,
    user: uuid.UUID,
    caplog: pytest.LogCaptureFixture,
) -> None:
    busy = ServerBusyError("The server is at capacity; retry in a moment.")
    hub = hub_of(app)
    room, message = await room_with_message(auth_client)
    app.dependency_overrides[room_events_use_case] = reads_failing(2, busy)
    stream = asyncio.create_task(auth_client.get(f"/api/chat-rooms/{room}/events"))
    await subscribed(hub, 1)
    notify(hub, r=room, k="message", id=message)
    async with asyncio.timeout(GUARD_S):
        response = await stream

    assert response.status_code == 200
    lines = response.text.splitlines()
    assert f"retry: {RECONNECT_AFTER_MS}" in lines
    assert "id: 0-1" in lines  # no message delivered yet: the replay starts at 0
    assert sse_events(lines) == [
        ("reconnect", {"chat_room_id": room, "reason": "server_busy"})
    ]
    assert not [r for r in caplog.records if r.levelname == "ERROR"]

    # The client reconnects as told: the replay brings the message it missed.
    app.dependency_overrides.pop(room_events_use_case)
    again = asyncio.create_task(
        auth_client.get(
            f"/api/chat-rooms/{room}/events", headers={"Last-Event-ID": "0-1"}
        )
    )
    await subscribed(hub, 1)
    notify(hub, r=room, k="member.left", u=str(user))  # ends this stream
    async with asyncio.timeout(GUARD_S):
        replayed = sse_events((await again).text.splitlines())
    assert [(kind, data.get("id")) for kind, data in replayed] == [
        ("message", message),
        ("member.left", None),
    ]


async def test_a_replay_the_database_cannot_serve_ends_the_stream_with_a_reconnect(
    app: FastAPI,
    auth_client: httpx.AsyncClient,
    user: uuid.UUID,
    caplog: pytest.LogCaptureFixture,
) -> None:
    lost = ServiceUnavailableError("The database is unavailable; try again shortly.")
    hub = hub_of(app)
    room, message = await room_with_message(auth_client)
    app.dependency_overrides[room_events_use_case] = reads_failing(1, lost)
    async with asyncio.timeout(GUARD_S):
        response = await auth_client.get(
            f"/api/chat-rooms/{room}/events", headers={"Last-Event-ID": "0-1"}
        )

    assert response.status_code == 200
    lines = response.text.splitlines()
    assert f"retry: {RECONNECT_AFTER_MS}" in lines
    assert "id: 0-1" in lines  # still nothing delivered
    assert sse_events(lines) == [
        ("reconnect", {"chat_room_id": room, "reason": "service_unavailable"})
    ]
    assert not [r for r in caplog.records if r.levelname == "ERROR"]

    app.dependency_overrides.pop(room_events_use_case)
    again = asyncio.create_task(
        auth_client.get(
            f"/api/chat-rooms/{room}/events", headers={"Last-Event-ID": "0-1"}
        )
    )
    await subscribed(hub, 1)
    notify(hub, r=room, k="member.left", u=str(user))
    async with asyncio.timeout(GUARD_S):
        replayed = sse_events((await again).text.splitlines())
    assert [(kind, data.get("id")) for kind, data in replayed] == [
        ("message", message),
        ("member.left", None),
    ]


async def test_a_member_removed_before_the_read_never_gets_the_message(
    app: FastAPI,
    auth_client: httpx.AsyncClient,
    other_client: httpx.AsyncClient,
    other_user: uuid.UUID,
) -> None:
    hub = hub_of(app)
    room, _ = await room_with_message(auth_client, other_user)
    bob_stream = asyncio.create_task(other_client.get(f"/api/chat-rooms/{room}/events"))
    await subscribed(hub, 1)
    removed = await auth_client.delete(f"/api/chat-rooms/{room}/members/{other_user}")
    assert removed.status_code == 204
    after = await auth_client.post(
        f"/api/chat-rooms/{room}/messages", json={"content": "Bob is gone"}
    )
    assert after.status_code == 201
    # Its notification reaches Bob's stream before the one of his removal:
    # his own read (row-level security) no longer finds the message.
    notify(hub, r=room, k="message", id=after.json()["id"])
    notify(hub, r=room, k="member.left", u=str(other_user))
    async with asyncio.timeout(GUARD_S):
        seen = sse_events((await bob_stream).text.splitlines())
    assert seen == [("member.left", {"chat_room_id": room, "user_id": str(other_user)})]


async def test_each_member_reads_the_message_as_the_history_shows_it(
    app: FastAPI,
    auth_client: httpx.AsyncClient,
    other_client: httpx.AsyncClient,
    user: uuid.UUID,
    other_user: uuid.UUID,
    connection: AsyncConnection,
) -> None:
    # An empty display name: both reads name the sender by their handle.
    handle = (
        await connection.execute(
            text(
                "update general_users set display_name = '' where id = :id "
                "returning account_name"
            ),
            {"id": user},
        )
    ).scalar_one()
    hub = hub_of(app)
    room, message = await room_with_message(auth_client, other_user)
    streams = [
        asyncio.create_task(client.get(f"/api/chat-rooms/{room}/events"))
        for client in (auth_client, other_client)
    ]
    await subscribed(hub, 2)
    notify(hub, r=room, k="message", id=message)
    for member in (user, other_user):
        notify(hub, r=room, k="member.left", u=str(member))
    history = await auth_client.get(f"/api/chat-rooms/{room}/messages")
    assert history.status_code == 200
    [shown] = [m for m in history.json()["messages"] if m["id"] == message]
    assert shown["sender"]["name"] == handle
    async with asyncio.timeout(GUARD_S):
        for stream in streams:
            seen = sse_events((await stream).text.splitlines())
            assert seen[0] == ("message", shown)


async def test_a_replay_reads_what_a_member_missed_and_nothing_for_others(
    database: Database,
    auth_client: httpx.AsyncClient,
    user: uuid.UUID,
    other_user: uuid.UUID,
) -> None:
    room, first = await room_with_message(auth_client)
    later = []
    for content in ("two", "three"):
        posted = await auth_client.post(
            f"/api/chat-rooms/{room}/messages", json={"content": content}
        )
        later.append(int(posted.json()["id"]))

    def reader(who: uuid.UUID) -> MessageReader:
        claims = {"sub": str(who), "role": "authenticated"}
        return MessageReader(partial(database.user_read, claims))

    member = reader(user)
    missed = await member.missed(room, after=first, limit=10)
    assert missed is not None
    assert [(m.id, m.content) for m in missed] == [
        (later[0], "two"),
        (later[1], "three"),
    ]
    capped = await member.missed(room, after=0, limit=2)
    assert [m.id for m in capped or []] == [first, later[0]]
    assert await member.missed(room, after=later[-1], limit=10) == []
    assert await member.missed(room, after=0, limit=0) == []  # membership only
    assert await reader(other_user).missed(room, after=0, limit=10) is None
