"""Room events across two uvicorn processes on one database.

Alice, Bob and Carol share a room; their streams are open on either server,
and messages are posted through either: events travel through Postgres
(LISTEN/NOTIFY), so every member sees every event wherever it happened.
"""

import asyncio
import json
import os
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ApiServer

GUARD_S = 30.0
"""A bound on waiting for an event, so a broken stream fails instead of hanging."""


@dataclass
class Event:
    id: str
    event: str
    data: dict[str, Any]


class Stream:
    """A member's open event stream, read event by event."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()

    async def _line(self) -> str | None:
        try:
            return await asyncio.wait_for(anext(self.lines), GUARD_S)
        except StopAsyncIteration:
            return None

    async def next(self) -> Event | None:
        """The next event (keep-alive comments skipped); None when it ended."""
        fields: dict[str, str] = {}
        while (line := await self._line()) is not None:
            if not line and fields:
                return Event(fields["id"], fields["event"], json.loads(fields["data"]))
            if line and not line.startswith(":"):
                key, _, value = line.partition(": ")
                fields[key] = value
        return None

    async def subscribed(self) -> None:
        """Wait for the comment the server sends once the stream listens."""
        assert (await self._line() or "").startswith(":")

    async def until(self, kind: str, **match: Any) -> Event:
        """Skip to the next event of ``kind`` whose data has ``match``."""
        while True:
            event = await self.next()
            assert event is not None, f"the stream ended before {kind} {match}"
            if event.event == kind and all(
                event.data.get(k) == v for k, v in match.items()
            ):
                return event


@dataclass
class Person:
    id: uuid.UUID
    headers: dict[str, str]


@pytest.fixture(scope="module")
def servers(e2e_database_url: str) -> Iterator[tuple[ApiServer, ApiServer]]:
    """Two API processes on one database; the second allows 2 streams per user."""
    first = ApiServer(e2e_database_url, ROOM_EVENTS_KEEPALIVE_S="0.5")
    second = ApiServer(e2e_database_url, ROOM_EVENTS_MAX_STREAMS_PER_USER="2")
    first.start()
    try:
        second.start()
        yield first, second
        second.stop()
    finally:
        first.stop()


def person(server: ApiServer) -> Person:
    user_id, headers = server.new_user()
    return Person(user_id, headers)


@asynccontextmanager
async def stream(
    server: ApiServer, who: Person, room: int, last_event_id: str | None = None
) -> AsyncIterator[Stream]:
    headers = dict(who.headers)
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    async with (
        httpx.AsyncClient(base_url=server.base_url, timeout=GUARD_S) as client,
        client.stream(
            "GET", f"/api/chat-rooms/{room}/events", headers=headers
        ) as response,
    ):
        assert response.status_code == 200
        opened = Stream(response)
        await opened.subscribed()
        yield opened


async def post(server: ApiServer, who: Person, path: str, body: dict[str, Any]) -> Any:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=GUARD_S) as client:
        response = await client.post(path, json=body, headers=who.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def room_of(server: ApiServer, owner: Person, *members: Person) -> int:
    room = int((await post(server, owner, "/api/chat-rooms", {"title": "Team"}))["id"])
    for member in members:
        await post(
            server,
            owner,
            f"/api/chat-rooms/{room}/members",
            {"user_id": str(member.id)},
        )
    return room


async def say(server: ApiServer, who: Person, room: int, content: str) -> Any:
    return await post(
        server, who, f"/api/chat-rooms/{room}/messages", {"content": content}
    )


async def test_three_people_see_each_other_and_the_persona_across_servers(
    servers: tuple[ApiServer, ApiServer],
) -> None:
    one, two = servers
    alice, bob, carol = person(one), person(one), person(one)
    room = await room_of(one, alice, bob, carol)
    async with (
        stream(one, alice, room) as alice_sees,
        stream(two, bob, room) as bob_sees,
        stream(one, carol, room) as carol_sees,
    ):
        hello = await say(one, alice, room, "hello all")
        seen = await bob_sees.until("message", id=hello["id"])
        assert seen.data == hello
        assert seen.id == str(hello["id"])

        quiet = await say(two, bob, room, "no persona needed")
        called = await say(two, carol, room, "@assistant what is this room?")
        for sees in (alice_sees, bob_sees, carol_sees):
            await sees.until("message", id=quiet["id"])
            following = await sees.next()
            assert following is not None
            # the unmentioned message got no answer: Carol's comes right after it
            assert (following.event, following.data["id"]) == ("message", called["id"])
            started = await sees.until("answer.started", reply_to=called["id"])
            assert started.data["persona"]["name"] == "Assistant"
            assert started.id.startswith(f"{called['id']}-")
            tokens: list[str] = []
            while (
                event := await sees.next()
            ) is not None and event.event == "answer.token":
                tokens.append(event.data["delta"])
            assert event is not None
            assert event.event == "message"
            assert event.data["role"] == "assistant"
            assert "".join(tokens) == event.data["content"]
            assert tokens


async def test_a_reconnect_replays_missed_messages(
    servers: tuple[ApiServer, ApiServer],
) -> None:
    one, two = servers
    alice, bob = person(one), person(one)
    room = await room_of(one, alice, bob)
    async with stream(two, bob, room) as bob_sees:
        first = await say(one, alice, room, "first")
        last_seen = (await bob_sees.until("message", id=first["id"])).id
    missed = [await say(one, alice, room, text) for text in ("second", "third")]
    async with stream(one, bob, room, last_event_id=f"{last_seen}-2") as bob_sees:
        replayed = [await bob_sees.next() for _ in missed]
        assert [e.data["id"] for e in replayed if e] == [m["id"] for m in missed]
        live = await say(two, alice, room, "fourth")
        assert (await bob_sees.until("message", id=live["id"])).data == live


async def test_a_removed_member_gets_a_last_event_and_nothing_more(
    servers: tuple[ApiServer, ApiServer],
) -> None:
    one, two = servers
    alice, bob = person(one), person(one)
    room = await room_of(one, alice, bob)
    async with (
        stream(two, bob, room) as bob_sees,
        stream(one, alice, room) as alice_sees,
    ):
        async with httpx.AsyncClient(base_url=one.base_url) as client:
            removed = await client.delete(
                f"/api/chat-rooms/{room}/members/{bob.id}", headers=alice.headers
            )
        assert removed.status_code == 204
        left = await bob_sees.until("member.left")
        assert left.data == {"chat_room_id": room, "user_id": str(bob.id)}
        assert await bob_sees.next() is None
        after = await say(one, alice, room, "after Bob left")
        await alice_sees.until("member.left", user_id=str(bob.id))
        assert (await alice_sees.until("message", id=after["id"])).data == after


async def test_outsiders_get_404_and_streams_are_bounded_per_user(
    servers: tuple[ApiServer, ApiServer],
) -> None:
    one, two = servers
    alice, mallory = person(one), person(one)
    room = await room_of(one, alice)
    async with httpx.AsyncClient(base_url=two.base_url) as client:
        outsider = await client.get(
            f"/api/chat-rooms/{room}/events", headers=mallory.headers
        )
        assert outsider.status_code == 404
        async with stream(two, alice, room), stream(two, alice, room):
            third = await client.get(
                f"/api/chat-rooms/{room}/events", headers=alice.headers
            )
            assert third.status_code == 429
            assert third.json()["error"] == "too_many_streams"
        async with stream(two, alice, room) as again:
            joined = await post(
                one,
                alice,
                f"/api/chat-rooms/{room}/members",
                {"user_id": str(mallory.id)},
            )
            assert len(joined["members"]) == 2
            event = await again.until("member.joined")
            assert event.data == {"chat_room_id": room, "user_id": str(mallory.id)}


async def test_idle_streams_get_keep_alive_comments(
    servers: tuple[ApiServer, ApiServer],
) -> None:
    one, _ = servers
    alice = person(one)
    room = await room_of(one, alice)
    async with stream(one, alice, room) as alice_sees:
        lines = [await alice_sees._line() for _ in range(2)]
        assert lines == ["", ": keep-alive"]  # after the subscribed comment


async def test_streams_end_with_a_comment_when_the_server_shuts_down(
    e2e_database_url: str,
) -> None:
    # A grace period longer than any wait here: the streams must not wait it out.
    server = ApiServer(e2e_database_url, SHUTDOWN_GRACE_S="120")
    server.start()
    try:
        alice, bob = person(server), person(server)
        room = await room_of(server, alice, bob)
        async with stream(server, alice, room) as alice_sees:
            assert server.process is not None
            os.kill(server.process.pid, signal.SIGTERM)
            rest = [line async for line in alice_sees.lines]
        exit_code = await asyncio.to_thread(server.process.wait, GUARD_S)
    finally:
        server.stop()
    assert ": reconnect with Last-Event-ID" in rest
    # It stopped by itself, long before the grace period (uvicorn then
    # re-raises the SIGTERM it caught).
    assert exit_code in {0, -signal.SIGTERM}
